package console

// Organizations, their apps, and the machines of an app.

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/caveatdev/caveat/api"
	"github.com/caveatdev/caveat/flyio"
	"github.com/caveatdev/caveat/internal/httpjson"
	"github.com/caveatdev/caveat/machines"
	"github.com/caveatdev/caveat/middleware"
	"github.com/caveatdev/caveat/resset"
	"github.com/caveatdev/caveat/store"
)

// org finds an organization of the path among the session's, and answers
// one it does not belong to exactly as one that does not exist, as the API
// does.
func (q *request) org() (*store.OrganizationRole, error) {
	slug := q.PathValue("org")
	for i := range q.orgs {
		if q.orgs[i].Slug == slug {
			return &q.orgs[i], nil
		}
	}
	return nil, httpjson.Errorf(http.StatusNotFound, "no organization %q", slug)
}

// redirect answers a form with the page to see next, and a notice (a key
// of notices) for it.
func redirect(w http.ResponseWriter, q *request, path, notice string) {
	if notice != "" {
		path += "?m=" + url.QueryEscape(notice)
	}
	http.Redirect(w, q.Request, path, http.StatusSeeOther)
}

// notice is the fixed message a redirect asked for.
func (q *request) notice() string { return notices[q.URL.Query().Get("m")] }

type homeData struct {
	SessionEnds string
}

// home serves GET /: the organizations of the session, and the session.
func (c *Console) home(w http.ResponseWriter, q *request) error {
	v := q.view("Organizations", "orgs", nil)
	v.Notice = q.notice()
	v.Data = homeData{SessionEnds: formatDate(q.p.Expires)}
	c.render(w, http.StatusOK, "home", v)
	return nil
}

type orgData struct {
	Apps    []store.App
	AppName string // the create form's, after a refusal
}

// orgPage serves GET /orgs/{org}: the organization's apps.
func (c *Console) orgPage(w http.ResponseWriter, q *request) error {
	org, err := q.org()
	if err != nil {
		return err
	}
	return c.showOrg(w, q, org, http.StatusOK, nil, "")
}

func (c *Console) showOrg(w http.ResponseWriter, q *request, org *store.OrganizationRole, status int, p *problem, appName string) error {
	apps, err := c.allApps(q, org)
	if err != nil {
		return err
	}
	v := q.view(org.Slug+" · Apps", "apps", org)
	v.Notice, v.Problem = q.notice(), p
	v.Data = orgData{Apps: apps, AppName: appName}
	c.render(w, status, "org", v)
	return nil
}

// createApp serves POST /orgs/{org}/apps.
func (c *Console) createApp(w http.ResponseWriter, q *request) error {
	org, err := q.org()
	if err != nil {
		return err
	}
	name := strings.TrimSpace(q.PostForm.Get("name"))
	if !store.ValidSlug(name) {
		return c.showOrg(w, q, org, http.StatusBadRequest, c.problemOf(q.Request, httpjson.Errorf(http.StatusBadRequest,
			"an app name is 1 to 63 lowercase letters, digits and dashes, not starting or ending with a dash")), name)
	}
	if _, err := c.cfg.Authority.CreateApp(q.ctx(), q.p, org.ID, name); err != nil {
		p := c.problemOf(q.Request, err)
		return c.showOrg(w, q, org, p.Status, p, name)
	}
	redirect(w, q, "/orgs/"+org.Slug+"/apps/"+name, "app")
	return nil
}

// machineRow is a machine as the app page lists it.
type machineRow struct {
	api.Machine
	// MayControl is whether the session may start and stop it (C).
	MayControl bool
	CanStart   bool
	CanStop    bool
}

type appData struct {
	App      store.App
	Served   bool // this process serves the Machines API
	Machines []machineRow
}

// appPage serves GET /orgs/{org}/apps/{app}: the app's machines.
func (c *Console) appPage(w http.ResponseWriter, q *request) error {
	return c.showApp(w, q, http.StatusOK, nil)
}

func (c *Console) showApp(w http.ResponseWriter, q *request, status int, p *problem) error {
	org, err := q.org()
	if err != nil {
		return err
	}
	app, err := c.cfg.Authority.AppByName(q.ctx(), q.p, org.ID, q.PathValue("app"))
	if err != nil {
		return err
	}
	d := appData{App: app, Served: c.cfg.Machines != nil}
	if d.Served {
		ms, err := allOf(func(p store.Page) ([]api.Machine, string, error) {
			return c.cfg.Machines.ListApp(q.ctx(), c.machinePrincipal(q), app, machines.ListOptions{Summary: true, Page: p})
		})
		if err != nil {
			return err
		}
		for _, m := range ms {
			id := m.ID
			row := machineRow{Machine: m,
				CanStart: slices.Contains([]string{"created", "stopped", "suspended"}, m.State),
				CanStop:  slices.Contains([]string{"started", "suspended"}, m.State)}
			row.MayControl = c.cfg.Authority.Allow(q.ctx(), q.p,
				&flyio.Access{OrgID: &app.OrgID, AppID: &app.ID, Machine: &id, Action: resset.ActionControl}) == nil
			d.Machines = append(d.Machines, row)
		}
	}
	v := q.view(org.Slug+" · "+app.Name, "apps", org)
	v.Notice, v.Problem, v.Data = q.notice(), p, d
	c.render(w, status, "app", v)
	return nil
}

// startMachine serves POST /orgs/{org}/apps/{app}/machines/{id}/start.
func (c *Console) startMachine(w http.ResponseWriter, q *request) error {
	return c.control(w, q, "start", func(ctx context.Context, t *machines.Target) error {
		_, err := c.cfg.Machines.Start(ctx, t, "")
		return err
	})
}

// stopMachine serves POST /orgs/{org}/apps/{app}/machines/{id}/stop.
func (c *Console) stopMachine(w http.ResponseWriter, q *request) error {
	return c.control(w, q, "stop", func(ctx context.Context, t *machines.Target) error {
		return c.cfg.Machines.Stop(ctx, t, "", machines.StopRequest{})
	})
}

// control starts or stops a machine through the Machines API's service:
// action C on the machine, cleared against the session's caveats.
func (c *Console) control(w http.ResponseWriter, q *request, op string, do func(context.Context, *machines.Target) error) error {
	if c.cfg.Machines == nil {
		return httpjson.Errorf(http.StatusNotFound, "this server does not serve the Machines API (role machines)")
	}
	org, err := q.org()
	if err != nil {
		return err
	}
	app, err := c.cfg.Authority.AppByName(q.ctx(), q.p, org.ID, q.PathValue("app"))
	if err != nil {
		return err
	}
	t, err := c.cfg.Machines.AuthorizeApp(q.ctx(), c.machinePrincipal(q), app, q.PathValue("id"), resset.ActionControl)
	if err == nil {
		err = do(q.ctx(), t)
	}
	if err != nil {
		p := c.problemOf(q.Request, err)
		return c.showApp(w, q, p.Status, p)
	}
	redirect(w, q, "/orgs/"+org.Slug+"/apps/"+app.Name, op)
	return nil
}

// machinePrincipal is the session as the Machines API's service sees a
// principal: every access is cleared by the authority, as for a session
// token presented to the API.
func (c *Console) machinePrincipal(q *request) middleware.Principal {
	return c.cfg.Authority.PrincipalOf(q.p)
}
