// Command export writes the OpenAPI documents the server generates:
// openapi.json (3.1) and openapi-3.0.yaml (the downgrade for 3.0 tools).
// It runs by `go generate ./...`.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/twinstac/twinstac/openapi"
)

func main() {
	out := flag.String("out", ".", "the folder to write the documents to")
	flag.Parse()
	if err := export(*out); err != nil {
		fmt.Fprintln(os.Stderr, "export:", err)
		os.Exit(1)
	}
}

func export(dir string) error {
	docs, err := openapi.Documents()
	if err != nil {
		return err
	}
	for name, b := range docs {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}
