package server

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"

	"github.com/nats-io/nats.go"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/internal/config"
	"github.com/twinstac/twinstac/internal/events"
)

// EventRuntime is what carries a server's events: the NATS connection
// (and the embedded NATS server when there is no other), the relay that
// publishes the outbox, and the hub that follows the stream for the
// clients of GET /events.
type EventRuntime struct {
	Hub        *events.Hub
	stopHub    context.CancelFunc
	stopRelay  context.CancelFunc
	running    sync.WaitGroup
	conn       *nats.Conn
	embedded   *events.Embedded
	stopOnce   sync.Once
	streamOnce sync.Once
}

// StartEvents connects to the NATS server of --nats-url, or starts an
// embedded one with its streams under the data folder, and starts the
// relay and the hub.
func StartEvents(ctx context.Context, cfg config.Server, st catalog.Store, log *slog.Logger) (*EventRuntime, error) {
	if cfg.Node == "" {
		return nil, fmt.Errorf("--node is empty: name this node")
	}
	rt := &EventRuntime{}
	var err error
	if cfg.NATSURL != "" {
		rt.conn, err = events.Connect(cfg.NATSURL, "twinstac "+cfg.Node)
		if err != nil {
			return nil, err
		}
		log.Info("events on NATS", "url", cfg.NATSURL, "node", cfg.Node, "stream", events.StreamName(cfg.Node))
	} else {
		rt.embedded, err = events.StartEmbedded(filepath.Join(cfg.DataDir, "nats"), log)
		if err != nil {
			return nil, err
		}
		if rt.conn, err = rt.embedded.Connect("twinstac " + cfg.Node); err != nil {
			rt.embedded.Close()
			return nil, fmt.Errorf("connecting to the embedded NATS server: %w", err)
		}
	}
	relay, err := events.NewRelay(events.RelayConfig{Node: cfg.Node, Outbox: st, Conn: rt.conn, Logger: log})
	if err != nil {
		rt.Close()
		return nil, err
	}
	rt.Hub, err = events.NewHub(rt.conn, cfg.Node, 0, log)
	if err != nil {
		rt.Close()
		return nil, err
	}
	base := context.WithoutCancel(ctx)
	var relayCtx, hubCtx context.Context
	relayCtx, rt.stopRelay = context.WithCancel(base)
	hubCtx, rt.stopHub = context.WithCancel(base)
	rt.running.Add(2)
	go func() { defer rt.running.Done(); relay.Run(relayCtx) }()
	go func() { defer rt.running.Done(); rt.Hub.Run(hubCtx) }()
	return rt, nil
}

// CloseStreams ends every client's event stream (the HTTP server waits
// for them on shutdown).
func (rt *EventRuntime) CloseStreams() {
	rt.streamOnce.Do(func() {
		if rt.stopHub != nil {
			rt.stopHub()
		}
	})
}

// Close stops the relay and the hub, then closes the connection and the
// embedded server.
func (rt *EventRuntime) Close() {
	rt.stopOnce.Do(func() {
		rt.CloseStreams()
		if rt.stopRelay != nil {
			rt.stopRelay()
		}
		rt.running.Wait()
		if rt.conn != nil {
			rt.conn.Close()
		}
		if rt.embedded != nil {
			rt.embedded.Close()
		}
	})
}
