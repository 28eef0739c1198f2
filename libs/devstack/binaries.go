package devstack

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
)

// ErrNoPostgresBinaries reports that StartPostgres cannot find the PostgreSQL
// server programs. The message says how to fix it.
var ErrNoPostgresBinaries = errors.New("no PostgreSQL server binaries found (initdb, pg_ctl) on PATH " +
	"or under /usr/lib/postgresql/*/bin: install them (Debian/Ubuntu: apt-get install postgresql) " +
	"or set LEDGER_DATABASE_URL to an existing database")

// debianBinGlob is where Debian and Ubuntu install the server programs, one
// directory per major version, none of them on PATH.
const debianBinGlob = "/usr/lib/postgresql/*/bin"

// postgresBinaries are the absolute paths of the server programs, all taken
// from one directory so that they are of the same version.
type postgresBinaries struct {
	initdb, pgCtl, postgres string
}

// findPostgresBinaries looks for initdb on PATH first, then in the directories
// matching glob, highest major version first. A directory only counts when it
// has initdb, pg_ctl and postgres.
func findPostgresBinaries(glob string) (postgresBinaries, error) {
	var dirs []string
	if p, err := exec.LookPath("initdb"); err == nil {
		// Follow symlinks (/usr/local/bin/initdb -> /usr/lib/postgresql/15/bin/initdb)
		// so pg_ctl and postgres come from the same installation.
		if real, err := filepath.EvalSymlinks(p); err == nil {
			dirs = append(dirs, filepath.Dir(real))
		}
		if abs, err := filepath.Abs(p); err == nil {
			dirs = append(dirs, filepath.Dir(abs))
		}
	}
	versioned, _ := filepath.Glob(glob) // the only error is a bad pattern
	slices.SortFunc(versioned, func(a, b string) int {
		return versionOf(b) - versionOf(a) // highest first
	})
	dirs = append(dirs, versioned...)

	for _, dir := range dirs {
		b := postgresBinaries{
			initdb:   filepath.Join(dir, "initdb"),
			pgCtl:    filepath.Join(dir, "pg_ctl"),
			postgres: filepath.Join(dir, "postgres"),
		}
		if isExecutable(b.initdb) && isExecutable(b.pgCtl) && isExecutable(b.postgres) {
			return b, nil
		}
	}
	return postgresBinaries{}, ErrNoPostgresBinaries
}

// versionOf returns the major version of a /usr/lib/postgresql/<version>/bin
// directory, or -1 when the name is not a number.
func versionOf(binDir string) int {
	v, err := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	if err != nil {
		return -1
	}
	return v
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}
