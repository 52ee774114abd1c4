package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/fhirgate/fhirgate/store"
	"github.com/fhirgate/fhirgate/store/pebble"
	"github.com/fhirgate/fhirgate/store/redis"
)

// storeConfig selects the store: Pebble in the data directory (one
// process, the default) or one Redis that several replicas share.
type storeConfig struct {
	url           string // redis://HOST:PORT/DB; empty: Pebble in the data directory
	prefix        string // the keyspace within that Redis database
	allowVolatile bool
	blockCacheMB  int // Pebble's block cache
}

// replicaID names this process among the replicas of a shared store.
var replicaID = sync.OnceValue(func() string { return store.NewHolderID("gateway") })

// DefaultStorePrefix starts every Redis key of a deployment.
const DefaultStorePrefix = "fhirgate:"

func (c *storeConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&c.url, "store", "", "where the data lives: redis://HOST:PORT/DB for a Redis that several replicas share (AOF with appendfsync always); empty: Pebble in --data, one process")
	fs.StringVar(&c.prefix, "store-prefix", DefaultStorePrefix, "with a Redis store: the prefix of every key (several deployments can share one Redis)")
	fs.BoolVar(&c.allowVolatile, "allow-volatile", false, "speed tests only: accept a Redis that may lose acknowledged writes (AOF off or not fsynced at every write)")
}

// shared reports whether the store is one that several processes share.
func (c storeConfig) shared() bool { return c.url != "" }

// check refuses a store URL that is not a Redis URL, with a message that
// says what is expected.
func (c storeConfig) check() error {
	if c.url == "" {
		return nil
	}
	u, err := url.Parse(c.url)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
		return fmt.Errorf("--store %q: want redis://HOST:PORT/DB (or rediss:// for TLS); leave it empty for Pebble in --data", redactURL(c.url))
	}
	return nil
}

// openEngine opens the configured engine. data is the data directory
// (Pebble keeps its files in data/store). Either way the store's format
// version is checked before anything else reads it.
func openEngine(ctx context.Context, c storeConfig, data string, log *slog.Logger) (store.Engine, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	if c.shared() {
		db, err := redis.Open(ctx, redis.Config{URL: c.url, Prefix: c.prefix, AllowVolatile: c.allowVolatile, Logger: log})
		if err != nil {
			return nil, err
		}
		return db, nil
	}
	if c.allowVolatile {
		log.Warn("--allow-volatile has no effect on Pebble: every commit is synced")
	}
	cacheMB := c.blockCacheMB
	if cacheMB <= 0 {
		cacheMB = pebble.DefaultCacheBytes >> 20
	}
	db, err := pebble.New(ctx, pebble.Config{Dir: filepath.Join(data, "store"), CacheBytes: int64(cacheMB) << 20})
	if err != nil {
		if strings.Contains(err.Error(), "lock") {
			return nil, fmt.Errorf("%w (is a gateway already running on %s? Pebble admits one process: stop it, or use --store redis://… for several replicas)", err, data)
		}
		return nil, err
	}
	if err := store.CheckFormat(ctx, db); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// scratchDir is the data directory of a replica on a shared store when
// none is given: local scratch only (nothing in it is needed by another
// replica or after a restart). The returned function removes it.
func scratchDir(data string, given bool) (string, func(), error) {
	if given {
		return data, func() {}, nil
	}
	dir, err := os.MkdirTemp("", "fhirgate-replica-")
	if err != nil {
		return "", nil, err
	}
	return dir, func() { os.RemoveAll(dir) }, nil
}

// requireShared checks what a replica on a shared store needs: one chain
// and one public URL for all replicas.
func requireShared(c storeConfig, ethRPC, baseURL string) error {
	if !c.shared() {
		return nil
	}
	var missing []string
	if ethRPC == "" {
		missing = append(missing, "--eth-rpc (every replica must use the same Ethereum node or network; the embedded dev chain is one process's)")
	}
	if baseURL == "" {
		missing = append(missing, "--base-url (the one public URL of the load balancer: tokens and wallet sign-ins name it, so every replica must agree)")
	}
	if len(missing) > 0 {
		return errors.New("with --store " + redactURL(c.url) + " the gateway runs as one of several replicas and needs " + strings.Join(missing, " and "))
	}
	return nil
}

// redactURL drops a password from a URL for messages and logs.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// flagGiven reports whether a flag was set on the command line or in the
// environment.
func flagGiven(fs *flag.FlagSet, name string) bool {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	if !given {
		_, given = os.LookupEnv("FHIRGATE_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_")))
	}
	return given
}
