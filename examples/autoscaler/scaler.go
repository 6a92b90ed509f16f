package main

import (
	"context"
	"log/slog"
	"time"
)

// scaler is one autoscaler's state between ticks.
type scaler struct {
	cfg   Config
	log   *slog.Logger
	api   machinesAPI
	queue func(ctx context.Context) (int64, error)
	now   func() time.Time

	lastChange time.Time
	lastDir    int // +1 after starting machines, -1 after stopping
}

// machinesAPI is what the scaler needs of the Machines API.
type machinesAPI interface {
	List(ctx context.Context, app string) ([]machine, error)
	Start(ctx context.Context, app, id string) error
	Stop(ctx context.Context, app, id string) error
}

type machine struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	State string `json:"state"`
}

// running reports whether a machine counts as started (or on its way).
func (m machine) running() bool { return m.State == "started" || m.State == "starting" }

// startable reports whether a machine can be started.
func (m machine) startable() bool {
	return m.State == "stopped" || m.State == "created" || m.State == "suspended"
}

// want is the number of machines for a queue depth.
func (s *scaler) want(depth int64) int {
	n := int((depth + int64(s.cfg.PerMachine) - 1) / int64(s.cfg.PerMachine))
	return max(s.cfg.Min, min(s.cfg.Max, n))
}

// tick looks once and acts at most once. Every outcome is logged; no error
// stops the autoscaler.
func (s *scaler) tick(ctx context.Context) {
	depth, err := s.queue(ctx)
	if err != nil {
		s.log.Error("reading the queue", "queue", s.cfg.Queue, "err", err)
		return
	}
	ms, err := s.api.List(ctx, s.cfg.App)
	if err != nil {
		s.logAPIError("listing machines", err)
		return
	}
	var running, startable []machine
	for _, m := range ms {
		switch {
		case m.running():
			running = append(running, m)
		case m.startable():
			startable = append(startable, m)
		}
	}
	want := s.want(depth)
	have := len(running)
	dir := 0
	switch {
	case want > have:
		dir = +1
	case want < have:
		dir = -1
	}
	if dir == 0 {
		s.log.Debug("steady", "queue_depth", depth, "started", have)
		return
	}
	// A change of direction waits for the cool-down, so that a queue that
	// hovers around a threshold does not flap machines.
	if dir != s.lastDir && !s.lastChange.IsZero() && s.now().Sub(s.lastChange) < s.cfg.Cooldown {
		s.log.Info("cooling down", "queue_depth", depth, "started", have, "want", want,
			"wait", (s.cfg.Cooldown - s.now().Sub(s.lastChange)).Round(time.Second).String())
		return
	}
	changed := 0
	if dir > 0 {
		for _, m := range startable[:min(len(startable), want-have)] {
			if err := s.api.Start(ctx, s.cfg.App, m.ID); err != nil {
				s.logAPIError("starting machine "+m.ID, err)
				continue
			}
			changed++
			s.log.Info("started machine", "machine", m.ID, "queue_depth", depth, "want", want)
		}
		if changed == 0 && want > have {
			s.log.Warn("want more machines but none can be started", "queue_depth", depth, "started", have, "want", want)
		}
	} else {
		for _, m := range running[:have-want] {
			if err := s.api.Stop(ctx, s.cfg.App, m.ID); err != nil {
				s.logAPIError("stopping machine "+m.ID, err)
				continue
			}
			changed++
			s.log.Info("stopped machine", "machine", m.ID, "queue_depth", depth, "want", want)
		}
	}
	if changed > 0 {
		s.lastChange, s.lastDir = s.now(), dir
	}
}

// logAPIError logs a failed call, saying plainly when the token is refused.
func (s *scaler) logAPIError(what string, err error) {
	if ae, ok := err.(*apiError); ok && (ae.Status == 401 || ae.Status == 403) {
		s.log.Error("the token was refused; check or replace CAVEAT_TOKEN", "action", what, "status", ae.Status, "error", ae.Message)
		return
	}
	s.log.Error(what+" failed; will retry", "err", err)
}
