package devstack

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"

	"github.com/go-sql-driver/mysql"
)

// Byte8Tables are the Byte8 Magento module's tables as its db_schema.xml
// declares them (shared/reference/magento-wire.md §1.1 byte8_event_outbox and
// §5.2 byte8_entity_sync_state), InnoDB, for the dev stack's relay-connected shop and
// tests of what reads and writes a shop's database.
var Byte8Tables = []string{
	"CREATE TABLE byte8_event_outbox (" +
		"entity_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT," +
		"idempotency_key VARCHAR(128) NOT NULL," +
		"event_name VARCHAR(64) NOT NULL," +
		"payload MEDIUMTEXT NOT NULL," +
		"status VARCHAR(16) NOT NULL DEFAULT 'pending'," +
		"attempts INT NOT NULL DEFAULT 0," +
		"last_status_code INT NULL," +
		"last_attempt_at TIMESTAMP NULL," +
		"next_attempt_at TIMESTAMP NULL," +
		"last_error TEXT NULL," +
		"created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP," +
		"PRIMARY KEY (entity_id)," +
		"UNIQUE KEY BYTE8_EVENT_OUTBOX_IDEMPOTENCY_KEY (idempotency_key)," +
		"KEY BYTE8_EVENT_OUTBOX_STATUS_NEXT_ATTEMPT_AT (status, next_attempt_at)," +
		"KEY BYTE8_EVENT_OUTBOX_STATUS (status)" +
		") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
	"CREATE TABLE byte8_entity_sync_state (" +
		"entity_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT," +
		"entity_type VARCHAR(32) NOT NULL," +
		"magento_id BIGINT UNSIGNED NOT NULL," +
		"provider VARCHAR(32) NOT NULL," +
		"sync_status VARCHAR(16) NOT NULL DEFAULT 'pending'," +
		"provider_entity_id VARCHAR(64) NULL," +
		"provider_reference VARCHAR(64) NULL," +
		"skip_reason VARCHAR(64) NULL," +
		"error_code VARCHAR(64) NULL," +
		"last_sync_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP," +
		"PRIMARY KEY (entity_id)," +
		"UNIQUE KEY BYTE8_ENTITY_SYNC_STATE_ENTITY_PROVIDER (entity_type, magento_id, provider)" +
		") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
}

// shopDBName is a database name CreateShopDatabase accepts.
var shopDBName = regexp.MustCompile(`^[A-Za-z0-9_]{1,64}$`)

// CreateShopDatabase creates the database name on m holding the module's
// tables (Byte8Tables), empty, and returns its DSN (parseTime on, session
// time zone UTC as Magento's own connections set it).
func (m *MariaDB) CreateShopDatabase(ctx context.Context, name string) (string, error) {
	if !shopDBName.MatchString(name) {
		return "", fmt.Errorf("devstack: database name %q: use letters, digits and _", name)
	}
	admin, err := sql.Open("mysql", m.DSN)
	if err != nil {
		return "", err
	}
	defer admin.Close()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE `"+name+"` CHARACTER SET utf8mb4"); err != nil {
		return "", fmt.Errorf("devstack: create MariaDB database %s: %w", name, err)
	}
	cfg, err := mysql.ParseDSN(m.DSN)
	if err != nil {
		return "", err
	}
	cfg.DBName, cfg.ParseTime = name, true
	cfg.Params = map[string]string{"time_zone": "'+00:00'"}
	dsn := cfg.FormatDSN()
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		return "", err
	}
	defer db.Close()
	for _, ddl := range Byte8Tables {
		if _, err := db.ExecContext(ctx, ddl); err != nil {
			return "", fmt.Errorf("devstack: create the Byte8 tables in %s: %w", name, err)
		}
	}
	return dsn, nil
}

// HaveMariaDB reports whether StartMariaDB can find the server's binaries
// (ErrNoMariaDBBinaries, with how to install them, when not).
func HaveMariaDB() error {
	_, _, err := findMariaDBBinaries()
	return err
}
