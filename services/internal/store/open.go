package store

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/ladder-cdk/ladder/services/internal/config"
)

// Opened is a store chosen by configuration (STORE).
type Opened struct {
	Store
	// Dependency names the backend for readiness checks and logs.
	Dependency string
	// Migrate applies the schema; nil unless DB_MIGRATE asks for it (only
	// PostgreSQL has a schema to migrate).
	Migrate func(context.Context) error
}

// Open opens the backend cfg.Store selects, for the service appName with
// at most maxConn PostgreSQL connections (0: the pool's default). Like the
// backends' own constructors it does not wait for the server.
func Open(ctx context.Context, cfg config.Config, appName string, maxConn int32, log *slog.Logger) (Opened, error) {
	if cfg.Store == config.StoreDynamoDB {
		d, err := OpenDynamoDB(ctx, DynamoOptions{Table: cfg.DynamoTable, Region: cfg.AWSRegion, Endpoint: cfg.DynamoEndpoint, Log: log})
		if err != nil {
			return Opened{}, err
		}
		return Opened{Store: d, Dependency: "dynamodb"}, nil
	}
	pg, err := OpenPostgres(ctx, Options{
		URL: cfg.DatabaseURL, ReadURL: cfg.DatabaseReadURL, Password: cfg.DatabasePassword,
		AppName: appName, MaxConn: maxConn, Log: log,
	})
	if err != nil {
		return Opened{}, fmt.Errorf("open postgres %s: %w", config.Redact(cfg.DatabaseURL), err)
	}
	o := Opened{Store: pg, Dependency: "postgres"}
	if cfg.DBMigrate {
		o.Migrate = pg.Migrate
	}
	return o, nil
}
