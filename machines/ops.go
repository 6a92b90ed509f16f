package machines

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/caveatdev/caveat/api"
	"github.com/caveatdev/caveat/fault"
	"github.com/caveatdev/caveat/middleware"
	"github.com/caveatdev/caveat/resset"
	"github.com/caveatdev/caveat/store"
)

// viewEvents is how many events a machine is shown with.
const viewEvents = 10

// view renders a machine; events may be nil (a summary).
func view(m store.Machine, events []store.MachineEvent, summary bool) api.Machine {
	v := api.Machine{ID: m.ID, Name: m.Name, State: string(m.State), Region: m.Region, ImageRef: parseImageRef(m.ImageRef),
		InstanceID: m.InstanceID, PrivateIP: m.PrivateIP, CreatedAt: m.CreatedAt.UTC(), UpdatedAt: m.UpdatedAt.UTC()}
	if summary {
		return v
	}
	v.Config = renderConfig(m.Config, m.Metadata)
	v.Events = make([]api.MachineEvent, len(events))
	for i, e := range events {
		v.Events[i] = api.MachineEvent{Type: e.Type, Status: e.Status, Source: e.Source, Timestamp: e.Timestamp.UnixMilli()}
	}
	return v
}

// renderConfig puts the metadata into the stored config (which never
// holds it) as config.metadata.
func renderConfig(config string, md map[string]string) json.RawMessage {
	if len(md) == 0 {
		return json.RawMessage(config)
	}
	mdJSON, _ := json.Marshal(md) // a map of strings always encodes
	body := strings.TrimSpace(config)
	if !strings.HasPrefix(body, "{") || !strings.HasSuffix(body, "}") {
		return json.RawMessage(config) // not an object: Validate keeps this from happening
	}
	var b bytes.Buffer
	b.WriteString(`{"metadata":`)
	b.Write(mdJSON)
	if inner := strings.TrimSpace(body[1 : len(body)-1]); inner != "" {
		b.WriteByte(',')
		b.WriteString(inner)
	}
	b.WriteByte('}')
	return b.Bytes()
}

// machineConfig is a config from a request, checked.
type machineConfig struct {
	config   string            // compact JSON, without metadata
	image    string            // config.image
	metadata map[string]string // config.metadata; nil when absent
}

// parseConfig checks a request's config: a JSON object with an "image"
// string; "metadata", if present, an object of strings. Other fields are
// kept as they are, unchecked, as Fly's many config fields would be.
func parseConfig(raw json.RawMessage) (machineConfig, error) {
	var out machineConfig
	var obj map[string]json.RawMessage
	if len(bytes.TrimSpace(raw)) == 0 || json.Unmarshal(raw, &obj) != nil || obj == nil {
		return out, badRequest(`"config" must be a JSON object with at least "image"`)
	}
	if err := json.Unmarshal(obj["image"], &out.image); err != nil || strings.TrimSpace(out.image) == "" {
		return out, badRequest(`"config.image" must be a non-empty string: the image to run`)
	}
	if len(out.image) > store.MaxImageRefLen || strings.ContainsFunc(out.image, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return out, badRequest(`"config.image" must be an image reference of at most %d bytes, without spaces or control characters`, store.MaxImageRefLen)
	}
	if md, ok := obj["metadata"]; ok && !bytes.Equal(bytes.TrimSpace(md), []byte("null")) {
		if err := json.Unmarshal(md, &out.metadata); err != nil {
			return out, badRequest(`"config.metadata" must be an object of strings`)
		}
		if out.metadata == nil {
			out.metadata = map[string]string{}
		}
		if len(out.metadata) > store.MaxMetadataKeys {
			return out, badRequest(`"config.metadata" has %d entries, the limit is %d`, len(out.metadata), store.MaxMetadataKeys)
		}
		for k, v := range out.metadata {
			if err := store.CheckMetadataEntry(k, v); err != nil {
				return out, badRequest(`"config.metadata": %v`, err)
			}
		}
	}
	delete(obj, "metadata")
	b, err := json.Marshal(obj)
	if err != nil {
		return out, badRequest(`"config": %v`, err)
	}
	if len(b) > store.MaxMachineConfigLen {
		return out, badRequest(`"config" is %d bytes long, the limit is %d`, len(b), store.MaxMachineConfigLen)
	}
	out.config = string(b)
	return out, nil
}

func badRequest(format string, args ...any) error {
	return fault.Errorf(fault.Invalid, format, args...)
}

func checkName(name string) error {
	if name != "" && !store.ValidSlug(name) {
		return badRequest("machine name %q: want 1 to 63 of a-z, 0-9 and -, not starting or ending with -", name)
	}
	return nil
}

func checkRegion(region string) error {
	if region != "" && !store.ValidSlug(region) {
		return badRequest("region %q: want 1 to 63 of a-z, 0-9 and -", region)
	}
	return nil
}

// ListOptions are the query parameters of list.
type ListOptions struct {
	// IncludeDeleted lists destroyed machines too.
	IncludeDeleted bool
	// Region lists only the machines of one region.
	Region string
	// Summary leaves config and events out.
	Summary bool
	// Page is the page of the app's machines to read (store.DefaultPageLimit
	// of them from the start when zero).
	Page store.Page
}

// List returns the machines that the principal may read ({orgid, appid,
// machine: ID, action r} for each) of one page of the app's machines,
// oldest first, and the cursor of the next page ("" after the last). A
// page may hold fewer machines than its limit, or none, when some are
// hidden from the principal or filtered out: follow the cursor to the end.
// It refuses only when the principal may not read the app at all (see the
// package doc).
func (s *Service) List(ctx context.Context, p middleware.Principal, appName string, opt ListOptions) ([]api.Machine, string, error) {
	app, err := s.resolveApp(ctx, p, appName)
	if err != nil {
		return nil, "", err
	}
	return s.ListApp(ctx, p, app, opt)
}

// ListApp is List for an app that the caller has resolved itself (the web
// console, which names apps within one organization): the same accesses
// are cleared.
func (s *Service) ListApp(ctx context.Context, p middleware.Principal, app store.App, opt ListOptions) ([]api.Machine, string, error) {
	if opt.Page.Limit == 0 {
		opt.Page.Limit = store.DefaultPageLimit
	}
	all, next, err := s.cfg.Store.ListMachines(ctx, app.ID, opt.IncludeDeleted, opt.Page)
	if errors.Is(err, store.ErrInvalid) {
		return nil, "", badRequest("after %q is not a cursor of this list: follow the next link of the previous page", opt.Page.After)
	}
	if err != nil {
		return nil, "", fmt.Errorf("list machines: %w", err)
	}
	out := []api.Machine{}
	for _, m := range all {
		if err := s.allow(ctx, p, app, m.ID, resset.ActionRead); err != nil {
			if refused(err) {
				continue
			}
			return nil, "", err
		}
		if m.Next != "" && !s.now().Before(m.NextAt) {
			if m, err = s.load(ctx, app, m.ID); err != nil {
				return nil, "", err
			}
		}
		if (m.State == store.MachineDestroyed && !opt.IncludeDeleted) || (opt.Region != "" && m.Region != opt.Region) {
			continue
		}
		var events []store.MachineEvent
		if !opt.Summary {
			if events, err = s.cfg.Store.ListMachineEvents(ctx, app.ID, m.ID, viewEvents); err != nil {
				return nil, "", fmt.Errorf("machine events: %w", err)
			}
		}
		out = append(out, view(m, events, opt.Summary))
	}
	if len(out) == 0 {
		if err := s.appReadable(ctx, p, app); err != nil {
			return nil, "", err
		}
	}
	return out, next, nil
}

// Get returns one machine, destroyed ones included: action r.
func (s *Service) Get(ctx context.Context, t *Target) (api.Machine, error) {
	if err := s.require(ctx, t, resset.ActionRead); err != nil {
		return api.Machine{}, err
	}
	return s.viewOf(ctx, t.App, t.ID)
}

func (s *Service) viewOf(ctx context.Context, app store.App, id string) (api.Machine, error) {
	m, err := s.load(ctx, app, id)
	if err != nil {
		return api.Machine{}, err
	}
	events, err := s.cfg.Store.ListMachineEvents(ctx, app.ID, id, viewEvents)
	if err != nil {
		return api.Machine{}, fmt.Errorf("machine events: %w", err)
	}
	return view(m, events, false), nil
}

// Create creates a machine: action c on the app's machine "" (one not
// created yet; t.ID must be ""). Unless req.SkipLaunch, it starts at once.
// The answer shows the new machine when the principal may read it (r on
// its id), and only its id and lease nonce otherwise.
func (s *Service) Create(ctx context.Context, t *Target, req api.CreateMachineRequest) (api.Machine, error) {
	if t.ID != "" {
		return api.Machine{}, errors.New("create: the target names a machine; want the app's machine \"\"")
	}
	if err := s.require(ctx, t, resset.ActionCreate); err != nil {
		return api.Machine{}, err
	}
	app := t.App
	cfg, err := parseConfig(req.Config)
	if err != nil {
		return api.Machine{}, err
	}
	if err := checkName(req.Name); err != nil {
		return api.Machine{}, err
	}
	if err := checkRegion(req.Region); err != nil {
		return api.Machine{}, err
	}
	var leaseTTL time.Duration
	if req.LeaseTTL != 0 {
		if leaseTTL, err = ParseLeaseTTL(fmt.Sprint(req.LeaseTTL)); err != nil {
			return api.Machine{}, err
		}
	}
	region := req.Region
	if region == "" {
		region = s.cfg.DefaultRegion
	}
	for range maxAttempts {
		now := s.now()
		m := store.Machine{ID: newMachineID(), AppID: app.ID, Name: req.Name, State: store.MachineCreated, Region: region,
			ImageRef: cfg.image, InstanceID: newInstanceID(now), PrivateIP: newPrivateIP(), Config: cfg.config,
			Metadata: cfg.metadata, CreatedAt: now, UpdatedAt: now}
		if m.Name == "" {
			m.Name = m.ID
		}
		// Whether the answer may show the machine is decided before it
		// exists, so that a failure to check does not follow a creation.
		readable, err := s.mayRead(ctx, &Target{p: t.p, App: app, ID: m.ID})
		if err != nil {
			return api.Machine{}, err
		}
		events := []store.MachineEvent{{Type: "launch", Status: string(store.MachineCreated), Source: sourceUser, Timestamp: now}}
		if !req.SkipLaunch {
			begin(&m, store.MachineStarting, store.MachineStarted, now, s.cfg.TransitionTime)
			events = append(events, store.MachineEvent{Type: "start", Status: string(store.MachineStarting), Source: sourceUser, Timestamp: now})
		}
		_, err = s.cfg.Store.CreateMachine(ctx, m, events...)
		switch {
		case errors.Is(err, store.ErrExists) && req.Name != "":
			return api.Machine{}, fault.Errorf(fault.Conflict, "app %q already has a machine named %q", app.Name, req.Name)
		case errors.Is(err, store.ErrExists):
			continue // the random id was taken
		case errors.Is(err, store.ErrNotFound):
			return api.Machine{}, notFound("no app %q", app.Name)
		case errors.Is(err, store.ErrInvalid):
			return api.Machine{}, badRequest("%v", err)
		case err != nil:
			return api.Machine{}, fmt.Errorf("create machine: %w", err)
		}
		s.cfg.Logger.InfoContext(ctx, "machine created", "app", app.ID, "machine", m.ID)
		var nonce string
		if leaseTTL > 0 {
			l, err := s.cfg.Store.AcquireMachineLease(ctx, app.ID, m.ID,
				store.MachineLease{Nonce: newNonce(), Owner: owner(t.p), ExpiresAt: now.Add(leaseTTL), Version: m.InstanceID}, now)
			if err != nil {
				return api.Machine{}, fmt.Errorf("lease the new machine: %w", err)
			}
			nonce = l.Lease.Nonce
		}
		if !readable {
			return api.Machine{ID: m.ID, Nonce: nonce}, nil
		}
		v, err := s.viewOf(ctx, app, m.ID)
		v.Nonce = nonce
		return v, err
	}
	return api.Machine{}, errors.New("create machine: no free machine id after many tries")
}

// Update replaces a machine's config (and image): action w, and action C
// as well when it changes the machine's state. Unless req.SkipLaunch, the
// machine goes through replacing to started with a new instance id (a
// state change); with SkipLaunch a started machine is stopped and a
// suspended one left stopped (state changes), while a created or stopped
// one stays as it is (w alone). The answer shows the machine when the
// principal may read it (r), and only its id otherwise.
func (s *Service) Update(ctx context.Context, t *Target, nonce string, req api.CreateMachineRequest) (api.Machine, error) {
	if err := s.require(ctx, t, resset.ActionWrite); err != nil {
		return api.Machine{}, err
	}
	cfg, err := parseConfig(req.Config)
	if err != nil {
		return api.Machine{}, err
	}
	if err := checkName(req.Name); err != nil {
		return api.Machine{}, err
	}
	if err := checkRegion(req.Region); err != nil {
		return api.Machine{}, err
	}
	if req.LeaseTTL != 0 {
		return api.Machine{}, badRequest(`"lease_ttl" is for create; take a lease with POST …/machines/%s/lease`, t.ID)
	}
	if !req.SkipLaunch {
		if err := s.require(ctx, t, resset.ActionControl); err != nil {
			return api.Machine{}, err
		}
	}
	readable, err := s.mayRead(ctx, t)
	if err != nil {
		return api.Machine{}, err
	}
	_, err = s.change(ctx, t, nonce, func(m *store.Machine, now time.Time) ([]store.MachineEvent, error) {
		if err := opUpdate.check(m); err != nil {
			return nil, err
		}
		if req.Region != "" && req.Region != m.Region {
			return nil, badRequest("machine %s runs in region %s: an update cannot move it to %s", m.ID, m.Region, req.Region)
		}
		if req.SkipLaunch && (m.State == store.MachineStarted || m.State == store.MachineSuspended) {
			if err := s.require(ctx, t, resset.ActionControl); err != nil {
				return nil, err
			}
		}
		if req.Name != "" {
			m.Name = req.Name
		}
		m.Config, m.ImageRef, m.InstanceID = cfg.config, cfg.image, newInstanceID(now)
		if cfg.metadata != nil {
			m.Metadata = cfg.metadata
		}
		switch {
		case !req.SkipLaunch:
			begin(m, store.MachineReplacing, store.MachineStarted, now, s.cfg.TransitionTime)
		case m.State == store.MachineStarted:
			begin(m, store.MachineStopping, store.MachineStopped, now, s.cfg.TransitionTime)
		case m.State == store.MachineSuspended:
			rest(m, store.MachineStopped) // its snapshot is of the old config
		}
		return []store.MachineEvent{{Type: "update", Status: string(m.State), Source: sourceUser, Timestamp: now}}, nil
	})
	if err != nil {
		return api.Machine{}, err
	}
	if !readable {
		return api.Machine{ID: t.ID}, nil
	}
	return s.viewOf(ctx, t.App, t.ID)
}

// Start starts a created, stopped or suspended machine: action C.
func (s *Service) Start(ctx context.Context, t *Target, nonce string) (api.MachineStartResult, error) {
	if err := s.require(ctx, t, resset.ActionControl); err != nil {
		return api.MachineStartResult{}, err
	}
	readable, err := s.mayRead(ctx, t)
	if err != nil {
		return api.MachineStartResult{}, err
	}
	var prev store.MachineState
	m, err := s.transition(ctx, t, nonce, opStart, func(m *store.Machine, now time.Time) {
		prev = m.State
		begin(m, store.MachineStarting, store.MachineStarted, now, s.cfg.TransitionTime)
	})
	if err != nil {
		return api.MachineStartResult{}, err
	}
	res := api.MachineStartResult{Message: fmt.Sprintf("machine %s is %s", m.ID, m.State), Status: string(m.State)}
	if readable {
		res.PreviousState = string(prev)
	}
	return res, nil
}

// StopRequest is the optional body of stop. Nothing runs, so the signal
// and the timeout only have to be valid.
type StopRequest struct {
	Signal  string   `json:"signal,omitempty"`
	Timeout Duration `json:"timeout,omitempty"`
}

// Stop stops a started or suspended machine: action C.
func (s *Service) Stop(ctx context.Context, t *Target, nonce string, req StopRequest) error {
	if err := s.require(ctx, t, resset.ActionControl); err != nil {
		return err
	}
	if err := checkSignal(req.Signal, true); err != nil {
		return err
	}
	if err := req.Timeout.check("timeout"); err != nil {
		return err
	}
	_, err := s.transition(ctx, t, nonce, opStop, func(m *store.Machine, now time.Time) {
		begin(m, store.MachineStopping, store.MachineStopped, now, s.cfg.TransitionTime)
	})
	return err
}

// Suspend suspends a started machine: action C.
func (s *Service) Suspend(ctx context.Context, t *Target, nonce string) error {
	_, err := s.transition(ctx, t, nonce, opSuspend, func(m *store.Machine, now time.Time) {
		begin(m, store.MachineSuspending, store.MachineSuspended, now, s.cfg.TransitionTime)
	})
	return err
}

// RestartOptions are the query parameters of restart; nothing runs, so
// they only have to be valid.
type RestartOptions struct {
	ForceStop bool
	Timeout   Duration
	Signal    string
}

// Restart stops and starts a started machine: action C. It goes through
// stopping and starting back to started.
func (s *Service) Restart(ctx context.Context, t *Target, nonce string, opt RestartOptions) error {
	if err := s.require(ctx, t, resset.ActionControl); err != nil {
		return err
	}
	if err := checkSignal(opt.Signal, true); err != nil {
		return err
	}
	if err := opt.Timeout.check("timeout"); err != nil {
		return err
	}
	_, err := s.transition(ctx, t, nonce, opRestart, func(m *store.Machine, now time.Time) {
		begin(m, store.MachineStopping, store.MachineStarting, now, s.cfg.TransitionTime)
	})
	return err
}

// Signal sends a signal to a started machine's process: action C. No
// process runs, so the machine's state does not change; the signal is
// recorded as an event.
func (s *Service) Signal(ctx context.Context, t *Target, nonce, signal string) error {
	if err := s.require(ctx, t, resset.ActionControl); err != nil {
		return err
	}
	if err := checkSignal(signal, false); err != nil {
		return err
	}
	_, err := s.change(ctx, t, nonce, func(m *store.Machine, now time.Time) ([]store.MachineEvent, error) {
		if err := opSignal.check(m); err != nil {
			return nil, err
		}
		return []store.MachineEvent{{Type: "signal", Status: signal, Source: sourceUser, Timestamp: now}}, nil
	})
	return err
}

// Destroy destroys a machine: action d. Without force the machine must be
// created, stopped or suspended; with force, anything but destroyed or
// being destroyed. It goes through destroying to destroyed, and stays
// listed with include_deleted.
func (s *Service) Destroy(ctx context.Context, t *Target, nonce string, force bool) error {
	if err := s.require(ctx, t, resset.ActionDelete); err != nil {
		return err
	}
	op := opDestroy
	if force {
		op = opForceDestroy
	}
	_, err := s.change(ctx, t, nonce, func(m *store.Machine, now time.Time) ([]store.MachineEvent, error) {
		if err := op.check(m); err != nil {
			return nil, err
		}
		begin(m, store.MachineDestroying, store.MachineDestroyed, now, s.cfg.TransitionTime)
		return []store.MachineEvent{{Type: "destroy", Status: string(m.State), Source: sourceUser, Timestamp: now}}, nil
	})
	if err == nil {
		s.cfg.Logger.InfoContext(ctx, "machine destroyed", "app", t.App.ID, "machine", t.ID)
	}
	return err
}

// transition is a control operation (action C) that moves a machine in a
// state legal for op into the transition set by move, recording an event.
func (s *Service) transition(ctx context.Context, t *Target, nonce string, op operation,
	move func(m *store.Machine, now time.Time)) (store.Machine, error) {
	if err := s.require(ctx, t, resset.ActionControl); err != nil {
		return store.Machine{}, err
	}
	return s.change(ctx, t, nonce, func(m *store.Machine, now time.Time) ([]store.MachineEvent, error) {
		if err := op.check(m); err != nil {
			return nil, err
		}
		move(m, now)
		return []store.MachineEvent{{Type: op.name, Status: string(m.State), Source: sourceUser, Timestamp: now}}, nil
	})
}

// Metadata returns a machine's metadata: action r.
func (s *Service) Metadata(ctx context.Context, t *Target) (map[string]string, error) {
	if err := s.require(ctx, t, resset.ActionRead); err != nil {
		return nil, err
	}
	m, err := s.load(ctx, t.App, t.ID)
	if err != nil {
		return nil, err
	}
	return m.Metadata, nil
}

// SetMetadata sets one metadata entry: action w. It returns the
// machine's metadata when the principal may read the machine, and nil
// otherwise (answered 204 No Content).
func (s *Service) SetMetadata(ctx context.Context, t *Target, nonce, key, value string) (map[string]string, error) {
	if err := s.require(ctx, t, resset.ActionWrite); err != nil {
		return nil, err
	}
	if err := store.CheckMetadataEntry(key, value); err != nil {
		return nil, badRequest("%v", err)
	}
	return s.metadataChange(ctx, t, nonce, key, func(m store.Machine) (store.Machine, error) {
		return s.cfg.Store.SetMachineMetadata(ctx, t.App.ID, t.ID, m.Version, key, value, s.now())
	})
}

// DeleteMetadata deletes one metadata entry: action w. It returns what
// SetMetadata does.
func (s *Service) DeleteMetadata(ctx context.Context, t *Target, nonce, key string) (map[string]string, error) {
	if err := s.require(ctx, t, resset.ActionWrite); err != nil {
		return nil, err
	}
	return s.metadataChange(ctx, t, nonce, key, func(m store.Machine) (store.Machine, error) {
		if _, ok := m.Metadata[key]; !ok {
			return m, notFound("machine %s has no metadata key %q", t.ID, key)
		}
		return s.cfg.Store.DeleteMachineMetadata(ctx, t.App.ID, t.ID, m.Version, key, s.now())
	})
}

func (s *Service) metadataChange(ctx context.Context, t *Target, nonce, key string,
	fn func(m store.Machine) (store.Machine, error)) (map[string]string, error) {
	readable, err := s.mayRead(ctx, t)
	if err != nil {
		return nil, err
	}
	for range maxAttempts {
		m, err := s.load(ctx, t.App, t.ID)
		if err != nil {
			return nil, err
		}
		if err := opKeep.check(&m); err != nil {
			return nil, err
		}
		if err := s.checkLease(ctx, t, &m, nonce, s.now()); err != nil {
			return nil, err
		}
		got, err := fn(m)
		_, refused := fault.As(err)
		switch {
		case errors.Is(err, store.ErrStale):
			continue
		case refused:
			return nil, err
		case errors.Is(err, store.ErrInvalid):
			return nil, badRequest("%v", err)
		case err != nil:
			return nil, fmt.Errorf("metadata %q: %w", key, err)
		}
		if !readable {
			return nil, nil
		}
		if got.Metadata == nil {
			return map[string]string{}, nil
		}
		return got.Metadata, nil
	}
	return nil, errBusy(t.ID)
}
