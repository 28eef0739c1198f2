package devtest

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/ledgersync/ledger/libs/devstack"
)

// EnvTestMariaDBDSN names the variable pointing MariaDB at an existing server
// (a go-sql-driver/mysql DSN of a user who may create and drop databases)
// instead of a throwaway one.
const EnvTestMariaDBDSN = "LEDGER_TEST_MARIADB_DSN"

var testMariaDB struct {
	once   sync.Once
	server *devstack.MariaDB
	dsn    string
	err    error
}

// MariaDB returns the DSN (go-sql-driver/mysql, parseTime=true) of a new,
// empty database on a throwaway MariaDB server (started once per test binary
// from the machine's mariadbd, stopped by Main), for this test alone: it is
// dropped when the test ends. The test creates the tables it needs
// (Byte8Tables for a shop's). Safe for parallel tests.
func MariaDB(t testing.TB) string {
	t.Helper()
	testMariaDB.once.Do(func() {
		if dsn := os.Getenv(EnvTestMariaDBDSN); dsn != "" {
			testMariaDB.dsn = dsn
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
		defer cancel()
		m, err := devstack.StartMariaDB(ctx, devstack.MariaDBOptions{})
		if err != nil {
			testMariaDB.err = fmt.Errorf("%w (or set %s to a DSN of an existing server)", err, EnvTestMariaDBDSN)
			return
		}
		testMariaDB.server, testMariaDB.dsn = m, m.DSN
	})
	if testMariaDB.err != nil {
		t.Fatalf("devtest: no test MariaDB: %v", testMariaDB.err)
	}
	name := "t_" + randomSuffix()
	admin := openMariaDB(t, testMariaDB.dsn)
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE `"+name+"` CHARACTER SET utf8mb4"); err != nil {
		t.Fatalf("devtest: create MariaDB database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS `"+name+"`"); err != nil {
			t.Errorf("devtest: drop MariaDB database %s: %v", name, err)
		}
		_ = admin.Close()
	})
	cfg, err := mysql.ParseDSN(testMariaDB.dsn)
	if err != nil {
		t.Fatalf("devtest: %s: %v", EnvTestMariaDBDSN, err)
	}
	cfg.DBName, cfg.ParseTime = name, true
	return cfg.FormatDSN()
}

// ShopDatabase returns the DSN of a new MariaDB database (MariaDB) holding the
// Byte8 module's tables (Byte8Tables), empty.
func ShopDatabase(t testing.TB) string {
	t.Helper()
	dsn := MariaDB(t)
	db := openMariaDB(t, dsn)
	defer db.Close()
	for _, ddl := range Byte8Tables {
		if _, err := db.ExecContext(context.Background(), ddl); err != nil {
			t.Fatalf("devtest: create the Byte8 tables: %v\n%s", err, ddl)
		}
	}
	return dsn
}

// Byte8Tables are the Byte8 module's tables (devstack.Byte8Tables).
var Byte8Tables = devstack.Byte8Tables

func openMariaDB(t testing.TB, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatalf("devtest: MariaDB DSN: %v", err)
	}
	db.SetConnMaxIdleTime(time.Second) // no idle connection outlives the test
	return db
}

// tearDownMariaDB stops the throwaway MariaDB server, if MariaDB started one.
func tearDownMariaDB() error {
	if testMariaDB.server == nil {
		return nil
	}
	return testMariaDB.server.Stop()
}
