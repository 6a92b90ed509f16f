package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/caveatdev/caveat/client"
	"github.com/spf13/cobra"
)

// machineFlags are the flags every machines command has: the online
// flags, the app and the token.
type machineFlags struct {
	onlineFlags
	app string
}

func (f *machineFlags) register(c *cobra.Command) {
	f.onlineFlags.registerAuthenticated(c, true)
	c.Flags().StringVarP(&f.app, "app", "a", "", "the app whose machines to act on (required)")
}

// needApp is the usage check of every machines command, a PreRunE: -a is
// required.
func (f *machineFlags) needApp(cmd *cobra.Command, _ []string) error {
	if f.app == "" {
		return usageError(cmd, "%s needs the app: -a APP", cmd.CommandPath())
	}
	return nil
}

// machinesErr is apiErr with the hints the Machines API's refusals call
// for.
func machinesErr(what string, err error) error {
	e := apiErr(what, err)
	var ce *cliError
	var ae *client.APIError
	if !errors.As(e, &ce) || !errors.As(err, &ae) {
		return e
	}
	switch ae.Status {
	case http.StatusForbidden:
		ce.withHint("the token does not allow this; 'caveat tokens debug' shows its caveats, and GET /v1/machines/actions what each operation needs")
	case http.StatusNotFound:
		ce.withHint("'caveat machines list -a APP' lists the machines you may see")
	}
	return ce
}

func (a *app) machinesCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "machines",
		Short: "List, create, start, stop and destroy an app's machines",
		Long: `Work with the machines of an app through the server's Machines API. Machines
are records with a state machine; no VM runs.

These commands use the token from -t, else CAVEAT_TOKEN, else the login, so
that an attenuated token (say, read and control only) can be tried as it is.
Each operation needs an action on the machine: list and get r, start and
stop C, create c, destroy d.`,
		Args: subcommandArgs,
		RunE: missingSubcommand,
	}
	c.AddCommand(a.machinesListCommand(), a.machinesGetCommand(), a.machinesCreateCommand(),
		a.machinesStartCommand(), a.machinesStopCommand(), a.machinesDestroyCommand(), a.machinesWaitCommand())
	return c
}

func (a *app) machinesListCommand() *cobra.Command {
	var (
		f   machineFlags
		all bool
		lf  listFlags
	)
	c := &cobra.Command{
		Use:   "list -a APP [--all] [--limit N] [--json]",
		Short: "List an app's machines",
		Long: `List the machines of an app that the token may read, oldest first, a page at a
time as the server answers them; --limit N stops after N.`,
		Args: maxArgs(0),
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := lf.check(cmd); err != nil {
				return err
			}
			return f.needApp(cmd, nil)
		},
		RunE: a.onlineList(&f.onlineFlags, func(ctx context.Context, cl *client.Client, _ []string) error {
			var err error
			out := a.newListPrinter(f.json, lf, "ID", "NAME", "STATE", "REGION", "UPDATED")
			pages := cl.Machines(ctx, f.app, client.ListMachinesOptions{IncludeDeleted: all, Summary: !f.json}, lf.page())
			err = printPages(out, pages, nil, func(m client.Machine) []string {
				return []string{m.ID, m.Name, m.State, m.Region, m.UpdatedAt.UTC().Format(time.RFC3339)}
			})
			if err != nil {
				return machinesErr("machines list", err)
			}
			return nil
		}),
	}
	f.register(c)
	lf.register(c)
	c.Flags().BoolVar(&all, "all", false, "include destroyed machines")
	return c
}

func (a *app) machinesGetCommand() *cobra.Command {
	var f machineFlags
	c := &cobra.Command{
		Use:     "get ID -a APP [--json]",
		Short:   "Show a machine, with its newest events",
		Args:    exactArgs(1, "the machine's id"),
		PreRunE: f.needApp,
		RunE: a.online(&f.onlineFlags, func(ctx context.Context, cl *client.Client, args []string) error {
			m, err := cl.Machine(ctx, f.app, args[0])
			if err != nil {
				return machinesErr("machines get", err)
			}
			if f.json {
				return a.printJSON(m)
			}
			var b strings.Builder
			for _, kv := range [][2]string{{"id", m.ID}, {"name", m.Name}, {"state", m.State}, {"region", m.Region},
				{"image", imageString(m.ImageRef)}, {"instance", m.InstanceID}, {"private ip", m.PrivateIP},
				{"created", m.CreatedAt.UTC().Format(time.RFC3339)}, {"updated", m.UpdatedAt.UTC().Format(time.RFC3339)}} {
				fmt.Fprintf(&b, "%-11s %s\n", kv[0]+":", kv[1])
			}
			if len(m.Events) > 0 {
				b.WriteString("events:\n")
				for _, e := range m.Events {
					fmt.Fprintf(&b, "  %s  %-8s %-10s %s\n", time.UnixMilli(e.Timestamp).UTC().Format("2006-01-02T15:04:05.000Z"), e.Type, e.Status, e.Source)
				}
			}
			return a.output(b.String())
		}),
	}
	f.register(c)
	return c
}

// imageString renders an image reference as one would write it.
func imageString(r client.ImageRef) string {
	s := r.Registry + "/" + r.Repository
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest
	}
	return s
}

func (a *app) machinesCreateCommand() *cobra.Command {
	var (
		f                   machineFlags
		image, name, region string
	)
	c := &cobra.Command{
		Use:   "create -a APP --image IMAGE [--name NAME] [--region REGION] [--json]",
		Short: "Create a machine and start it; prints its id",
		Args:  maxArgs(0),
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			if image == "" {
				return usageError(cmd, "%s needs the image: --image IMAGE", cmd.CommandPath())
			}
			return f.needApp(cmd, nil)
		},
		RunE: a.online(&f.onlineFlags, func(ctx context.Context, cl *client.Client, _ []string) error {
			m, err := cl.CreateMachine(ctx, f.app, client.CreateMachineRequest{Config: client.MachineConfig{Image: image}, Name: name, Region: region})
			if err != nil {
				return machinesErr("machines create", err)
			}
			if f.json {
				return a.printJSON(m)
			}
			a.info("created machine %s (%s) in app %s, region %s: %s", m.ID, m.Name, f.app, m.Region, m.State)
			return a.output(m.ID + "\n")
		}),
	}
	f.register(c)
	c.Flags().StringVar(&image, "image", "", "the image to run (required)")
	c.Flags().StringVar(&name, "name", "", "the machine's name (default: its id)")
	c.Flags().StringVar(&region, "region", "", "the region (default: the server's)")
	return c
}

func (a *app) machinesStartCommand() *cobra.Command {
	var f machineFlags
	c := &cobra.Command{
		Use:     "start ID -a APP [--json]",
		Short:   "Start a created, stopped or suspended machine",
		Args:    exactArgs(1, "the machine's id"),
		PreRunE: f.needApp,
		RunE: a.online(&f.onlineFlags, func(ctx context.Context, cl *client.Client, args []string) error {
			res, err := cl.StartMachine(ctx, f.app, args[0])
			if err != nil {
				return machinesErr("machines start", err)
			}
			if f.json {
				return a.printJSON(res)
			}
			if res.PreviousState == "" { // a token that may not read the machine is not told
				a.info("machine %s is %s", args[0], res.Status)
				return nil
			}
			a.info("machine %s is %s (was %s)", args[0], res.Status, res.PreviousState)
			return nil
		}),
	}
	f.register(c)
	return c
}

func (a *app) machinesStopCommand() *cobra.Command {
	var f machineFlags
	c := &cobra.Command{
		Use:     "stop ID -a APP [--json]",
		Short:   "Stop a started or suspended machine",
		Args:    exactArgs(1, "the machine's id"),
		PreRunE: f.needApp,
		RunE: a.online(&f.onlineFlags, func(ctx context.Context, cl *client.Client, args []string) error {
			if err := cl.StopMachine(ctx, f.app, args[0]); err != nil {
				return machinesErr("machines stop", err)
			}
			if f.json {
				return a.printJSON(map[string]any{"ok": true, "id": args[0]})
			}
			a.info("machine %s is stopping", args[0])
			return nil
		}),
	}
	f.register(c)
	return c
}

func (a *app) machinesDestroyCommand() *cobra.Command {
	var f machineFlags
	var force bool
	c := &cobra.Command{
		Use:     "destroy ID -a APP [--force] [--json]",
		Short:   "Destroy a machine (a started one only with --force)",
		Args:    exactArgs(1, "the machine's id"),
		PreRunE: f.needApp,
		RunE: a.online(&f.onlineFlags, func(ctx context.Context, cl *client.Client, args []string) error {
			if err := cl.DestroyMachine(ctx, f.app, args[0], force); err != nil {
				return machinesErr("machines destroy", err)
			}
			if f.json {
				return a.printJSON(map[string]any{"ok": true, "id": args[0]})
			}
			a.info("machine %s is being destroyed", args[0])
			return nil
		}),
	}
	f.register(c)
	c.Flags().BoolVar(&force, "force", false, "destroy it even if it is started")
	return c
}

// machineStates are the states a machine can be waited for.
var machineStates = []string{"created", "started", "stopped", "suspended", "destroyed"}

func (a *app) machinesWaitCommand() *cobra.Command {
	var (
		f       machineFlags
		state   string
		timeout time.Duration
	)
	c := &cobra.Command{
		Use:   "wait ID -a APP [--state STATE] [--timeout DURATION] [--json]",
		Short: "Wait until a machine is in a state (started by default)",
		Long: `Wait until the machine is in the state (created, started, stopped, suspended
or destroyed; started by default), or fail when --timeout (1m by default)
passes first. It needs r on the machine. Longer timeouts than the server's
one-minute limit are waited for in several requests.`,
		Example: `  id=$(caveat machines create -a workers --image nginx)
  caveat machines start "$id" -a workers && caveat machines wait "$id" -a workers --state started`,
		Args: exactArgs(1, "the machine's id"),
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			if !slices.Contains(machineStates, state) {
				return usageError(cmd, "--state %q is not one of %s", state, strings.Join(machineStates, ", "))
			}
			if timeout <= 0 {
				return usageError(cmd, "--timeout must be positive")
			}
			return f.needApp(cmd, nil)
		},
		RunE: a.onlineList(&f.onlineFlags, func(ctx context.Context, cl *client.Client, args []string) error {
			ctx, cancel := context.WithTimeout(ctx, timeout+30*time.Second)
			defer cancel()
			deadline := time.Now().Add(timeout)
			for {
				left := time.Until(deadline)
				if left < time.Second {
					left = time.Second
				}
				err := cl.WaitMachine(ctx, f.app, args[0], state, min(left, time.Minute))
				var ae *client.APIError
				switch {
				case err == nil:
					if f.json {
						return a.printJSON(map[string]any{"id": args[0], "state": state})
					}
					a.info("machine %s is %s", args[0], state)
					return nil
				case errors.As(err, &ae) && ae.Status == http.StatusRequestTimeout && time.Now().Before(deadline):
					continue
				case errors.As(err, &ae) && ae.Status == http.StatusRequestTimeout:
					return failf("machines wait: machine %s was not %s within %s", args[0], state, timeout)
				default:
					return machinesErr("machines wait", err)
				}
			}
		}),
	}
	f.register(c)
	c.Flags().StringVar(&state, "state", "started", "the state to wait for: "+strings.Join(machineStates, ", "))
	c.Flags().DurationVar(&timeout, "timeout", time.Minute, "how long to wait at most")
	return c
}
