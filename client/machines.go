package client

// The Machines API (package machines on the server side), under
// /v1/apps/{app}/machines. Calls need a token that allows their action on
// the machine (GET /v1/machines/actions lists them); a refusal is an
// *APIError whose Message names the caveat and the missing action.

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/caveatdev/caveat/api"
)

// MachineConfig is the config of a new or updated machine: Image is
// required; Metadata becomes the machine's metadata; Extra holds any
// other fields, sent as they are.
type MachineConfig struct {
	Image    string
	Metadata map[string]string
	Extra    map[string]json.RawMessage
}

// MarshalJSON renders the config as one object.
func (c MachineConfig) MarshalJSON() ([]byte, error) {
	obj := make(map[string]any, len(c.Extra)+2)
	for k, v := range c.Extra {
		obj[k] = v
	}
	obj["image"] = c.Image
	if c.Metadata != nil {
		obj["metadata"] = c.Metadata
	}
	return json.Marshal(obj)
}

// CreateMachineRequest asks for a new machine, or an update of one. It is
// api.CreateMachineRequest with its config built from a MachineConfig
// rather than given as JSON (see wire).
type CreateMachineRequest struct {
	Config MachineConfig
	// Region defaults to the server's; an update cannot change it.
	Region string
	// Name defaults to the machine's id.
	Name string
	// SkipLaunch leaves the machine created (or, for an update, stopped).
	SkipLaunch bool
	// LeaseTTL, in seconds, has the new machine leased to the caller;
	// the answer's Nonce is the lease's. Create only.
	LeaseTTL int
}

// wire is the request's body.
func (r CreateMachineRequest) wire() (api.CreateMachineRequest, error) {
	config, err := json.Marshal(r.Config)
	if err != nil {
		return api.CreateMachineRequest{}, fmt.Errorf("machine config: %w", err)
	}
	return api.CreateMachineRequest{Config: config, Region: r.Region, Name: r.Name, SkipLaunch: r.SkipLaunch, LeaseTTL: r.LeaseTTL}, nil
}

// ListMachinesOptions are the filters of Machines.
type ListMachinesOptions struct {
	IncludeDeleted bool
	Region         string
	Summary        bool
}

// MachineOption modifies a call that changes a machine.
type MachineOption func(h http.Header)

// WithLease sends the nonce of the lease the caller holds, which every
// change of a leased machine needs.
func WithLease(nonce string) MachineOption {
	return func(h http.Header) { h.Set("fly-machine-lease-nonce", nonce) }
}

func machineHeader(opts []MachineOption) http.Header {
	if len(opts) == 0 {
		return nil
	}
	h := http.Header{}
	for _, o := range opts {
		o(h)
	}
	return h
}

func machinesPath(app string) string { return "/v1/apps/" + url.PathEscape(app) + "/machines" }

func machinePath(app, id string) string { return machinesPath(app) + "/" + url.PathEscape(id) }

// MachinesPage lists the machines the token may read of a page of the
// app's machines, and the cursor of the next page ("" after the last),
// which the server sends in a Link header (the body is Fly's: an array).
// A page may hold fewer machines than its limit, or none.
func (c *Client) MachinesPage(ctx context.Context, app string, opt ListMachinesOptions, p Page) ([]Machine, string, error) {
	q := url.Values{}
	if opt.IncludeDeleted {
		q.Set("include_deleted", "true")
	}
	if opt.Region != "" {
		q.Set("region", opt.Region)
	}
	if opt.Summary {
		q.Set("summary", "true")
	}
	var out []Machine
	h, err := c.exchange(ctx, "GET", machinesPath(app)+p.query(q), nil, &out, nil)
	if err != nil {
		return nil, "", err
	}
	return out, nextLink(h), nil
}

// Machines yields the app's machines that the token may read, a page at
// a time, from p on.
func (c *Client) Machines(ctx context.Context, app string, opt ListMachinesOptions, p Page) iter.Seq2[[]Machine, error] {
	return Pages(p, func(p Page) ([]Machine, string, error) { return c.MachinesPage(ctx, app, opt, p) })
}

// nextLink returns the after parameter of the rel="next" link of a Link
// header, or "".
func nextLink(h http.Header) string {
	for _, v := range h.Values("Link") {
		for _, link := range strings.Split(v, ",") {
			target, params, ok := strings.Cut(strings.TrimSpace(link), ";")
			if !ok || !strings.Contains(strings.ReplaceAll(params, " ", ""), `rel="next"`) {
				continue
			}
			u, err := url.Parse(strings.Trim(strings.TrimSpace(target), "<>"))
			if err != nil {
				continue
			}
			return u.Query().Get("after")
		}
	}
	return ""
}

// Machine returns one machine.
func (c *Client) Machine(ctx context.Context, app, id string) (Machine, error) {
	var out Machine
	err := c.do(ctx, "GET", machinePath(app, id), nil, &out, nil)
	return out, err
}

// CreateMachine creates a machine; unless req.SkipLaunch it is starting.
func (c *Client) CreateMachine(ctx context.Context, app string, req CreateMachineRequest) (Machine, error) {
	body, err := req.wire()
	if err != nil {
		return Machine{}, err
	}
	var out Machine
	err = c.do(ctx, "POST", machinesPath(app), body, &out, nil)
	return out, err
}

// UpdateMachine replaces a machine's config.
func (c *Client) UpdateMachine(ctx context.Context, app, id string, req CreateMachineRequest, opts ...MachineOption) (Machine, error) {
	body, err := req.wire()
	if err != nil {
		return Machine{}, err
	}
	var out Machine
	err = c.do(ctx, "POST", machinePath(app, id), body, &out, machineHeader(opts))
	return out, err
}

// StartMachine starts a created, stopped or suspended machine.
func (c *Client) StartMachine(ctx context.Context, app, id string, opts ...MachineOption) (MachineStartResult, error) {
	var out MachineStartResult
	err := c.do(ctx, "POST", machinePath(app, id)+"/start", nil, &out, machineHeader(opts))
	return out, err
}

// StopMachine stops a started or suspended machine.
func (c *Client) StopMachine(ctx context.Context, app, id string, opts ...MachineOption) error {
	return c.do(ctx, "POST", machinePath(app, id)+"/stop", nil, nil, machineHeader(opts))
}

// SuspendMachine suspends a started machine.
func (c *Client) SuspendMachine(ctx context.Context, app, id string, opts ...MachineOption) error {
	return c.do(ctx, "POST", machinePath(app, id)+"/suspend", nil, nil, machineHeader(opts))
}

// RestartMachine stops and starts a started machine.
func (c *Client) RestartMachine(ctx context.Context, app, id string, opts ...MachineOption) error {
	return c.do(ctx, "POST", machinePath(app, id)+"/restart", nil, nil, machineHeader(opts))
}

// SignalMachine sends a signal ("SIGUSR1", …) to a started machine.
func (c *Client) SignalMachine(ctx context.Context, app, id, signal string, opts ...MachineOption) error {
	return c.do(ctx, "POST", machinePath(app, id)+"/signal", map[string]string{"signal": signal}, nil, machineHeader(opts))
}

// DestroyMachine destroys a machine; without force it must not be
// running.
func (c *Client) DestroyMachine(ctx context.Context, app, id string, force bool, opts ...MachineOption) error {
	path := machinePath(app, id)
	if force {
		path += "?force=true"
	}
	return c.do(ctx, "DELETE", path, nil, nil, machineHeader(opts))
}

// WaitMachine returns when the machine is in state, or an *APIError with
// status 408 when timeout (at most a minute; 0 for the server's default)
// passes first.
func (c *Client) WaitMachine(ctx context.Context, app, id, state string, timeout time.Duration) error {
	q := url.Values{"state": {state}}
	if timeout > 0 {
		q.Set("timeout", strconv.Itoa(int((timeout+time.Second-1)/time.Second)))
	}
	return c.do(ctx, "GET", machinePath(app, id)+"/wait?"+q.Encode(), nil, nil, nil)
}

// AcquireMachineLease takes the machine's lease for ttl (whole seconds;
// the server's default when 0).
func (c *Client) AcquireMachineLease(ctx context.Context, app, id string, ttl time.Duration) (MachineLease, error) {
	var out api.LeaseResponse
	err := c.do(ctx, "POST", machinePath(app, id)+"/lease"+ttlQuery(ttl), nil, &out, nil)
	return out.Data, err
}

// RefreshMachineLease extends the lease the nonce names to ttl from now.
func (c *Client) RefreshMachineLease(ctx context.Context, app, id, nonce string, ttl time.Duration) (MachineLease, error) {
	var out api.LeaseResponse
	err := c.do(ctx, "POST", machinePath(app, id)+"/lease"+ttlQuery(ttl), nil, &out, machineHeader([]MachineOption{WithLease(nonce)}))
	return out.Data, err
}

// MachineLeaseInfo returns the machine's active lease, without its nonce.
func (c *Client) MachineLeaseInfo(ctx context.Context, app, id string) (MachineLease, error) {
	var out api.LeaseResponse
	err := c.do(ctx, "GET", machinePath(app, id)+"/lease", nil, &out, nil)
	return out.Data, err
}

// ReleaseMachineLease ends the lease the nonce names.
func (c *Client) ReleaseMachineLease(ctx context.Context, app, id, nonce string) error {
	return c.do(ctx, "DELETE", machinePath(app, id)+"/lease", nil, nil, machineHeader([]MachineOption{WithLease(nonce)}))
}

func ttlQuery(ttl time.Duration) string {
	if ttl <= 0 {
		return ""
	}
	return "?ttl=" + strconv.Itoa(int((ttl+time.Second-1)/time.Second))
}

// MachineMetadata returns a machine's metadata.
func (c *Client) MachineMetadata(ctx context.Context, app, id string) (map[string]string, error) {
	var out map[string]string
	err := c.do(ctx, "GET", machinePath(app, id)+"/metadata", nil, &out, nil)
	return out, err
}

// SetMachineMetadata sets one metadata entry and returns the metadata, or
// nil when the token may not read the machine (the server answers 204).
func (c *Client) SetMachineMetadata(ctx context.Context, app, id, key, value string, opts ...MachineOption) (map[string]string, error) {
	var out map[string]string
	err := c.do(ctx, "POST", machinePath(app, id)+"/metadata/"+url.PathEscape(key), map[string]string{"value": value}, &out, machineHeader(opts))
	return out, err
}

// DeleteMachineMetadata deletes one metadata entry and returns the
// metadata, or nil when the token may not read the machine.
func (c *Client) DeleteMachineMetadata(ctx context.Context, app, id, key string, opts ...MachineOption) (map[string]string, error) {
	var out map[string]string
	err := c.do(ctx, "DELETE", machinePath(app, id)+"/metadata/"+url.PathEscape(key), nil, &out, machineHeader(opts))
	return out, err
}
