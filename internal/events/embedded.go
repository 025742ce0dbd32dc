package events

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Embedded is a NATS server with JetStream running inside the process,
// for a node that names no NATS server of its own. It listens on no
// port: the process connects to it in-process, so that several servers
// can run side by side on one machine.
type Embedded struct {
	srv *server.Server
}

// StartEmbedded starts a NATS server with JetStream whose streams are
// kept under dir.
func StartEmbedded(dir string, log *slog.Logger) (*Embedded, error) {
	if log == nil {
		log = slog.Default()
	}
	srv, err := server.NewServer(&server.Options{
		ServerName: "twinstac-embedded",
		DontListen: true,
		JetStream:  true,
		StoreDir:   dir,
		NoSigs:     true,
		NoLog:      true,
	})
	if err != nil {
		return nil, fmt.Errorf("configuring the embedded NATS server: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("the embedded NATS server did not start within 30s")
	}
	log.Info("events on an embedded NATS server with JetStream", "store", dir)
	return &Embedded{srv: srv}, nil
}

// Connect opens an in-process connection to the server.
func (e *Embedded) Connect(name string) (*nats.Conn, error) {
	return nats.Connect("", nats.InProcessServer(e.srv), nats.Name(name), nats.MaxReconnects(-1))
}

// Close shuts the server down and waits until it has.
func (e *Embedded) Close() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}

// Connect connects to the NATS server at url (nats://host:4222, or
// several separated by commas), reconnecting for as long as the process
// lives.
func Connect(url, name string) (*nats.Conn, error) {
	nc, err := nats.Connect(url, nats.Name(name), nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true), nats.ReconnectWait(time.Second))
	if err != nil {
		return nil, fmt.Errorf("connecting to NATS at %s: %w", url, err)
	}
	return nc, nil
}
