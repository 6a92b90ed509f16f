package server

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/caveatdev/caveat/internal/keyfile"
	"github.com/caveatdev/caveat/keyring"
)

// loadMasterKey reads the master key file, or creates it (mode 0600, never
// overwriting) when create is set and it does not exist. It reports whether
// it generated the key. Errors name the file, never its contents.
func loadMasterKey(path string, create bool) (keyring.MasterKey, bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && create {
		k := keyring.NewMasterKey()
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return k, false, fmt.Errorf("master key directory: %w", err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return k, false, fmt.Errorf("create master key file: %w", err)
		}
		_, werr := f.Write(keyfile.Encode(k[:]))
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			os.Remove(path)
			return k, false, fmt.Errorf("write master key file %s: %w", path, werr)
		}
		return k, true, nil
	}
	if err != nil {
		return keyring.MasterKey{}, false, fmt.Errorf("read master key file: %w", err)
	}
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
		return keyring.MasterKey{}, false, fmt.Errorf("master key file %s is readable by others (mode %#o); chmod 600 it", path, st.Mode().Perm())
	}
	raw, err := keyfile.Decode(b)
	if err != nil {
		return keyring.MasterKey{}, false, fmt.Errorf("master key file %s: %w", path, err)
	}
	k, err := keyring.ParseMasterKey(raw)
	if err != nil {
		return k, false, fmt.Errorf("master key file %s: %w", path, err)
	}
	return k, false, nil
}
