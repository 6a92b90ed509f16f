package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

// TestListFollowsPages: the server answers a page of machines at a time
// and links the next; List reads them all, in order.
func TestListFollowsPages(t *testing.T) {
	const total = 250
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "FlyV1 tok" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		from, _ := strconv.Atoi(r.URL.Query().Get("after"))
		var page []machine
		for i := from; i < min(from+100, total); i++ {
			page = append(page, machine{ID: fmt.Sprintf("m%03d", i), State: "started"})
		}
		if from+100 < total {
			w.Header().Set("Link", fmt.Sprintf(`<%s?after=%d&limit=100>; rel="next"`, r.URL.Path, from+100))
		}
		json.NewEncoder(w).Encode(page)
	}))
	defer srv.Close()
	ms, err := newAPI(srv.URL, "tok").List(context.Background(), "workers")
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != total || ms[0].ID != "m000" || ms[total-1].ID != fmt.Sprintf("m%03d", total-1) {
		t.Fatalf("%d machines listed, want %d in order", len(ms), total)
	}
}
