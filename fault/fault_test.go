package fault_test

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/caveatdev/caveat"
	"github.com/caveatdev/caveat/fault"
	"github.com/caveatdev/caveat/flyio"
	"github.com/caveatdev/caveat/internal/httpjson"
	"github.com/caveatdev/caveat/resset"
)

// refusal clears an access against caveats and returns the denial as
// middleware.CheckAccess answers it.
func refusal(t *testing.T, a *flyio.Access, cs ...caveat.Caveat) error {
	t.Helper()
	err := caveat.NewCaveatSet(cs...).Clear(a)
	if err == nil {
		t.Fatal("the access was allowed")
	}
	return fault.Deny(err)
}

// TestOnlyUnspecified (moved from machines, which asked it of the error's
// tree): a denial is "only unspecified" when every caveat that refused
// did so because the access named too little.
func TestOnlyUnspecified(t *testing.T) {
	org, app := uint64(1), uint64(2)
	appLevel := &flyio.Access{OrgID: &org, AppID: &app, Action: resset.ActionRead}
	machines := &flyio.Machines{Machines: resset.ResourceSet[string]{"": resset.ActionRead | resset.ActionControl}}
	volumes := &flyio.Volumes{Volumes: resset.ResourceSet[string]{"vol_1": resset.ActionAll}}
	otherApp := &flyio.Apps{Apps: resset.ResourceSet[uint64]{3: resset.ActionAll}}
	readOnly := &flyio.Organization{ID: 1, Mask: resset.ActionRead}
	write := &flyio.Access{OrgID: &org, AppID: &app, Action: resset.ActionWrite}

	for _, tc := range []struct {
		name   string
		a      *flyio.Access
		cs     []caveat.Caveat
		expect bool
	}{
		{"machines caveat", appLevel, []caveat.Caveat{readOnly, machines}, true},
		{"machines and volumes caveats", appLevel, []caveat.Caveat{machines, volumes}, true},
		{"another app", appLevel, []caveat.Caveat{otherApp}, false},
		{"another app and machines", appLevel, []caveat.Caveat{machines, otherApp}, false},
		{"action refused and machines", write, []caveat.Caveat{readOnly, machines}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			denial := refusal(t, tc.a, tc.cs...)
			if got := fault.OnlyUnspecified(denial); got != tc.expect {
				t.Errorf("OnlyUnspecified: %v, want %v (%v)", got, tc.expect, denial)
			}
			// Wrapped on its way out (machines wraps refusals), it
			// still answers.
			if got := fault.OnlyUnspecified(fmt.Errorf("allow: %w", denial)); got != tc.expect {
				t.Errorf("wrapped: %v, want %v", got, tc.expect)
			}
			if fault.CodeOf(denial) != fault.Denied || !errors.Is(denial, caveat.ErrResourceUnspecified) && tc.expect {
				t.Errorf("the denial lost its code or its cause: %#v", denial)
			}
		})
	}
	// Refusals that are not the caveats' are never taken for
	// unspecified resources, whatever their message says.
	unspecified := refusal(t, appLevel, machines)
	for _, err := range []error{
		nil,
		errors.New("caveat 0 (Machines): resource unspecified: the access names no machine"),
		fault.Errorf(fault.Unauthenticated, "caveat 0 (Machines): resource unspecified: x"),
		fault.Errorf(fault.Denied, "user 3 is not a member of organization 1"),
		fault.Errorf(fault.Denied, ""),
		fault.Errorf(fault.Denied, `caveat 1 (Apps): unauthorized for resource: app 2 not allowed (allowed: 3); caveat 0 (Machines): resource unspecified: x`),
		httpjson.Errorf(http.StatusForbidden, "caveat 0 (Machines): resource unspecified: x"),
		fault.Wrap(fault.Unauthenticated, unspecified),
	} {
		if fault.OnlyUnspecified(err) {
			t.Errorf("%v taken for a refusal by unspecified resources only", err)
		}
	}
}

func TestCodeAndMessage(t *testing.T) {
	cause := errors.New("store: not found")
	err := fmt.Errorf("lookup: %w", fault.Wrap(fault.NotFound, cause))
	if fault.CodeOf(err) != fault.NotFound || fault.MessageOf(err) != "store: not found" || !errors.Is(err, cause) {
		t.Fatalf("code %q message %q", fault.CodeOf(err), fault.MessageOf(err))
	}
	if fault.CodeOf(cause) != "" || fault.MessageOf(cause) != "" || fault.CodeOf(nil) != "" {
		t.Fatal("an error of the server's own has a code or a message")
	}
	e := fault.Errorf(fault.Conflict, "app %q already exists", "web")
	if e.Error() != `app "web" already exists` || fault.CodeOf(e) != fault.Conflict {
		t.Fatalf("Errorf: %v", e)
	}
}
