package config

import (
	"testing"

	"github.com/spf13/pflag"
)

func TestByteSize(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   string
		want int64
		bad  bool
	}{
		{"10MiB", 10 << 20, false},
		{"5GB", 5e9, false},
		{"512k", 512 << 10, false},
		{"1234", 1234, false},
		{"1.5KiB", 1536, false},
		{"ten", 0, true},
		{"-1", 0, true},
	}
	for _, tc := range cases {
		var b ByteSize
		err := b.Set(tc.in)
		if (err != nil) != tc.bad || int64(b) != tc.want {
			t.Errorf("Set(%q) = %d, %v; want %d (error %v)", tc.in, b, err, tc.want, tc.bad)
		}
	}
}

func TestEnvAppliesUnlessFlagGiven(t *testing.T) {
	t.Setenv("TWINSTAC_ADDR", "127.0.0.1:9999")
	t.Setenv("TWINSTAC_DATA_DIR", "/from/env")
	t.Setenv("TWINSTAC_MAX_BODY_SIZE", "1MiB")
	t.Setenv("TWINSTAC_CORS_WRITE_ORIGINS", "https://a.example, https://b.example")
	c := Defaults()
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	c.ServeFlags(fs)
	if err := fs.Parse([]string{"--data-dir", "/from/flag"}); err != nil {
		t.Fatal(err)
	}
	if err := ApplyEnv(fs); err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:9999" || c.DataDir != "/from/flag" || c.MaxBodyBytes != 1<<20 {
		t.Fatalf("got addr %q data dir %q max body %d", c.Addr, c.DataDir, c.MaxBodyBytes)
	}
	if len(c.CORSWriteOrigins) != 2 || c.CORSWriteOrigins[1] != "https://b.example" {
		t.Fatalf("cors write origins = %q", c.CORSWriteOrigins)
	}
	t.Setenv("TWINSTAC_MAX_ASSET_SIZE", "lots")
	fs = pflag.NewFlagSet("serve", pflag.ContinueOnError)
	c.ServeFlags(fs)
	if err := ApplyEnv(fs); err == nil {
		t.Fatal("a bad size in the environment was accepted")
	}
}
