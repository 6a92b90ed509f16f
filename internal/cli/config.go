package cli

// The config file: one reader and one writer for every command. The
// offline commands read its "token" last of their sources; the online
// commands read it for the server URL and the saved login.
//
// The file is $CAVEAT_CONFIG_DIR/config.json (default
// ~/.config/caveat/config.json), written with mode 0600 in a 0700
// directory, atomically (a temporary file renamed over it). After a login it
// holds:
//
//	{"api_url": "…", "token": "FlyV1 fm2_…,fm2_…", "session_secret": "cvs1_…", "email": "…"}
//
// "token" is the session bundle: the session token and its current login
// discharge. The client renews the discharge with the session secret before
// it expires and saves the renewed bundle back, so the offline commands see
// a current bundle too. A file holding only {"token": "FlyV1 fm2_…"},
// written by hand, works as well.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// maxConfigInput bounds the config file.
const maxConfigInput = 1 << 20

// savedConfig is the whole config file.
type savedConfig struct {
	APIURL        string `json:"api_url,omitempty"`
	Token         string `json:"token,omitempty"`
	SessionSecret string `json:"session_secret,omitempty"`
	Email         string `json:"email,omitempty"`

	// path is where the file is, "" when neither CAVEAT_CONFIG_DIR nor
	// HOME is set; found says whether it existed. Neither is saved.
	path  string
	found bool
}

// configPath returns the config file's path, or "" when neither
// CAVEAT_CONFIG_DIR nor HOME is set.
func (a *app) configPath() string {
	if dir := a.env("CAVEAT_CONFIG_DIR"); dir != "" {
		return filepath.Join(dir, "config.json")
	}
	if home := a.env("HOME"); home != "" {
		return filepath.Join(home, ".config", "caveat", "config.json")
	}
	return ""
}

// loadConfig reads the config file, once per invocation; a missing file is
// an empty config. Its errors never quote the file, which holds a token.
func (a *app) loadConfig() (savedConfig, error) {
	if a.cfg != nil {
		return *a.cfg, nil
	}
	cfg := savedConfig{path: a.configPath()}
	if cfg.path == "" {
		a.cfg = &cfg
		return cfg, nil
	}
	b, err := readFileLimited(cfg.path, maxConfigInput)
	if errors.Is(err, fs.ErrNotExist) {
		a.cfg = &cfg
		return cfg, nil
	}
	if err != nil {
		return cfg, failf("reading config file: %v", err)
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return cfg, failf("config file %s is not valid JSON: %v", cfg.path, jsonSyntaxOnly(err)).
			withHint(`it should hold {"token": "FlyV1 fm2_…"} or a login that 'caveat auth login' saved: fix it, or move it away and log in again`)
	}
	cfg.found = true
	a.cfg = &cfg
	return cfg, nil
}

// saveConfig writes the config file atomically with mode 0600.
func (a *app) saveConfig(cfg savedConfig) error {
	path := a.configPath()
	if path == "" {
		return failf("cannot save the login: neither CAVEAT_CONFIG_DIR nor HOME is set")
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return failf("config directory: %v", err)
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return failf("config: %v", err)
	}
	tmp, err := os.CreateTemp(dir, ".config-*.json")
	if err != nil {
		return failf("writing config file: %v", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return failf("writing config file: %v", err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return failf("writing config file: %v", err)
	}
	if err := tmp.Close(); err != nil {
		return failf("writing config file: %v", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return failf("writing config file: %v", err)
	}
	cfg.path, cfg.found = path, true
	a.cfg = &cfg
	return nil
}

// jsonSyntaxOnly drops anything from a JSON error that could quote the
// input (the config file holds a token).
func jsonSyntaxOnly(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("field %q holds a JSON %s", te.Field, te.Value)
	}
	return "cannot decode"
}
