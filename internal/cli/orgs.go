package cli

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/caveatdev/caveat/client"
	"github.com/spf13/cobra"
)

func (a *app) orgsCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "orgs",
		Short: "Organizations: list, create, keys, members and invitations",
		Args:  subcommandArgs,
		RunE:  missingSubcommand,
	}
	c.AddCommand(a.orgsListCommand(), a.orgsCreateCommand(), a.orgsRotateCommand(), a.orgsKeysCommand(), a.orgsRetireCommand())
	c.AddCommand(a.memberCommands()...)
	return c
}

func (a *app) orgsListCommand() *cobra.Command {
	var (
		f  onlineFlags
		lf listFlags
	)
	c := &cobra.Command{
		Use:   "list [--limit N] [--json]",
		Short: "List your organizations",
		Args:  cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := lf.check(cmd); err != nil {
				return err
			}
			return nil
		},
		RunE: a.onlineList(&f, func(ctx context.Context, cl *client.Client, _ []string) error {
			var err error
			out := a.newListPrinter(f.json, lf, "ID", "SLUG", "ROLE")
			pages := client.Pages(lf.page(), func(p client.Page) ([]client.Organization, string, error) {
				return cl.OrganizationsPage(ctx, p)
			})
			err = printPages(out, pages, nil, func(o client.Organization) []string {
				return []string{strconv.FormatUint(o.ID, 10), o.Slug, o.Role}
			})
			if err != nil {
				return apiErr("orgs list", err)
			}
			return nil
		}),
	}
	f.registerAuthenticated(c, true)
	lf.register(c)
	return c
}

func (a *app) orgsCreateCommand() *cobra.Command {
	var f onlineFlags
	c := &cobra.Command{
		Use:   "create SLUG [--json]",
		Short: "Create an organization, with you as its admin",
		Args:  exactArgs(1, "the organization's slug"),
		RunE: a.online(&f, func(ctx context.Context, cl *client.Client, args []string) error {
			o, err := cl.CreateOrganization(ctx, args[0])
			if err != nil {
				return apiErr("orgs create", err)
			}
			if f.json {
				return a.printJSON(o)
			}
			a.info("created organization %s (id %d)", o.Slug, o.ID)
			return nil
		}),
	}
	f.registerAuthenticated(c, true)
	return c
}

func (a *app) orgsRotateCommand() *cobra.Command {
	var f onlineFlags
	c := &cobra.Command{
		Use:   "rotate-key SLUG",
		Short: "Give an organization a new signing key",
		Long: `Give an organization a new signing key. New tokens are minted with it; tokens
minted with the previous key keep working until that key is retired.`,
		Args: exactArgs(1, "the organization's slug"),
		RunE: a.online(&f, func(ctx context.Context, cl *client.Client, args []string) error {
			kid, err := cl.RotateKey(ctx, args[0])
			if err != nil {
				return apiErr("orgs rotate-key", err)
			}
			a.info("organization %s now mints with key %s", args[0], kid)
			return nil
		}),
	}
	f.registerAuthenticated(c, false)
	return c
}

func (a *app) orgsKeysCommand() *cobra.Command {
	var (
		f  onlineFlags
		lf listFlags
	)
	c := &cobra.Command{
		Use:   "keys SLUG [--limit N] [--json]",
		Short: "List an organization's signing keys (admins)",
		Args:  exactArgs(1, "the organization's slug"),
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := lf.check(cmd); err != nil {
				return err
			}
			return nil
		},
		RunE: a.onlineList(&f, func(ctx context.Context, cl *client.Client, args []string) error {
			var err error
			out := a.newListPrinter(f.json, lf, "KEY ID", "STATE", "CREATED", "RETIRED")
			err = printPages(out, cl.Keys(ctx, args[0], lf.page()), nil, func(k client.Key) []string {
				return []string{k.KID, k.State, k.CreatedAt.UTC().Format(time.RFC3339), timeOr(k.RetiredAt, "-")}
			})
			if err != nil {
				return apiErr("orgs keys", err)
			}
			return nil
		}),
	}
	f.registerAuthenticated(c, true)
	lf.register(c)
	return c
}

func (a *app) orgsRetireCommand() *cobra.Command {
	var f onlineFlags
	c := &cobra.Command{
		Use:   "retire-key SLUG KEY-ID",
		Short: "Retire a rotated signing key: the tokens it minted stop working",
		Long: `Retire a signing key that 'caveat orgs rotate-key' replaced. Every token it
minted stops working (within a minute on every server). The key that mints
new tokens cannot be retired: rotate first. 'caveat orgs keys' lists the ids.`,
		Args: exactArgs(2, "the organization's slug and the key id"),
		RunE: a.online(&f, func(ctx context.Context, cl *client.Client, args []string) error {
			if err := cl.RetireKey(ctx, args[0], args[1]); err != nil {
				return apiErr("orgs retire-key", err)
			}
			a.info("key %s of organization %s is retired", args[1], args[0])
			return nil
		}),
	}
	f.registerAuthenticated(c, false)
	return c
}

func (a *app) appsCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "apps",
		Short: "List and create apps",
		Args:  subcommandArgs,
		RunE:  missingSubcommand,
	}
	c.AddCommand(a.appsListCommand(), a.appsCreateCommand())
	return c
}

func (a *app) appsListCommand() *cobra.Command {
	return orgListCommand(a, orgList[client.App]{
		use:    "list [-o ORG] [--limit N] [--json]",
		short:  "List an organization's apps",
		what:   "apps list",
		header: []string{"ID", "NAME", "CREATED"},
		pages:  (*client.Client).Apps,
		row: func(ap client.App) []string {
			return []string{strconv.FormatUint(ap.ID, 10), ap.Name, ap.CreatedAt.UTC().Format(time.RFC3339)}
		},
	})
}

func (a *app) appsCreateCommand() *cobra.Command {
	var f onlineFlags
	var org string
	c := &cobra.Command{
		Use:   "create NAME [-o ORG] [--json]",
		Short: "Create an app",
		Args:  exactArgs(1, "the app's name"),
		RunE: a.online(&f, func(ctx context.Context, cl *client.Client, args []string) error {
			var err error
			if org, err = a.pickOrg(ctx, cl, org); err != nil {
				return err
			}
			ap, err := cl.CreateApp(ctx, org, args[0])
			if err != nil {
				return apiErr("apps create", err)
			}
			if f.json {
				return a.printJSON(ap)
			}
			a.info("created app %s (id %d) in organization %s", ap.Name, ap.ID, org)
			return nil
		}),
	}
	f.registerAuthenticated(c, true)
	c.Flags().StringVarP(&org, "org", "o", "", "organization slug (default: your only organization)")
	return c
}

// pickOrg returns org, or the caller's only organization when org is empty.
func (a *app) pickOrg(ctx context.Context, cl *client.Client, org string) (string, error) {
	if org != "" {
		return org, nil
	}
	orgs, err := cl.Organizations(ctx)
	if err != nil {
		return "", apiErr("listing your organizations", err)
	}
	switch len(orgs) {
	case 0:
		return "", failf("you belong to no organization").withHint("create one with 'caveat orgs create SLUG'")
	case 1:
		return orgs[0].Slug, nil
	}
	var slugs []string
	for _, o := range orgs {
		slugs = append(slugs, o.Slug)
	}
	return "", failf("you belong to several organizations: name one with -o").
		withHint("your organizations: %s", strings.Join(slugs, ", "))
}

// exactArgs requires n positional arguments, described by what.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError(cmd, "%s wants %d argument(s): %s; got %d", cmd.CommandPath(), n, what, len(args))
		}
		return nil
	}
}
