package workers

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// StateMediaType is the media type of a state archive.
const StateMediaType = "application/gzip"

// PackState writes the regular files and folders under dir to w as a
// gzip-compressed tar archive, paths relative to dir. Symbolic links and
// other special files are left out: a snapshot holds data, not pointers
// into the machine it was taken on.
func PackState(dir string, w io.Writer) error {
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && p != dir {
			return nil // gone while packed: a twin that runs changes its state
		}
		if err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		switch {
		case d.IsDir():
			return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: 0o750, ModTime: time.Unix(0, 0)})
		case d.Type().IsRegular():
			// The file opened is the one packed, whatever its name holds
			// meanwhile: a twin that replaces its state files whole (written
			// aside, then renamed) is saved consistently while it runs.
			f, err := os.Open(p)
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if err != nil {
				return err
			}
			defer func() { _ = f.Close() }()
			info, err := f.Stat()
			if err != nil {
				return err
			}
			hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: int64(info.Mode().Perm()), Size: info.Size(), ModTime: info.ModTime()}
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			// A file that grows while it is packed is cut at its size; one
			// cut short in place is padded with zeros to it.
			n, err := io.CopyN(tw, f, info.Size())
			if errors.Is(err, io.EOF) {
				_, err = io.CopyN(tw, zeros{}, info.Size()-n)
			}
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}

// zeros reads as zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// UnpackState unpacks a state archive (PackState) into dir and returns
// the bytes of the files it wrote. Entries that would leave dir, and
// entries other than files and folders, are refused.
func UnpackState(r io.Reader, dir string) (int64, error) {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return 0, fmt.Errorf("not a state archive: %w", err)
	}
	tr := tar.NewReader(gz)
	var total int64
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return total, nil
		}
		if err != nil {
			return total, fmt.Errorf("not a state archive: %w", err)
		}
		name, err := cleanPath(hdr.Name)
		if err != nil {
			return total, err
		}
		dst := filepath.Join(dir, filepath.FromSlash(name))
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(dst, 0o750); err != nil {
				return total, err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(dst), 0o750); err != nil {
				return total, err
			}
			f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, os.FileMode(hdr.Mode).Perm()|0o600)
			if err != nil {
				return total, err
			}
			n, err := io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			total += n
			if err != nil {
				return total, err
			}
		default:
			return total, fmt.Errorf("state archive entry %q is not a file or a folder", hdr.Name)
		}
	}
}
