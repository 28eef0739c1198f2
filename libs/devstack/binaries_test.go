package devstack

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestFindPostgresBinariesPicksHighestVersion(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // nothing on PATH
	root := t.TempDir()
	for _, v := range []string{"9", "15", "16"} {
		dir := filepath.Join(root, v, "bin")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"initdb", "pg_ctl", "postgres"} {
			if v == "16" && name == "postgres" {
				continue // incomplete installation: skipped
			}
			if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	got, err := findPostgresBinaries(filepath.Join(root, "*", "bin"))
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(root, "15", "bin", "initdb"); got.initdb != want {
		t.Fatalf("initdb = %s, want %s", got.initdb, want)
	}
}

func TestFindPostgresBinariesNone(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := findPostgresBinaries(filepath.Join(t.TempDir(), "*", "bin"))
	if !errors.Is(err, ErrNoPostgresBinaries) {
		t.Fatalf("err = %v, want ErrNoPostgresBinaries", err)
	}
	const want = "no PostgreSQL server binaries found (initdb, pg_ctl) on PATH or under /usr/lib/postgresql/*/bin: " +
		"install them (Debian/Ubuntu: apt-get install postgresql) or set LEDGER_DATABASE_URL to an existing database"
	if err.Error() != want {
		t.Fatalf("message = %q", err.Error())
	}
}
