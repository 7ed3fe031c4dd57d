package schema

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
)

// This file is the one reading path of a repository tree (issue 18 item
// 2): `validate` (Load), `diff` and the daemon's sources list and read
// trees through ListTree and ReadTreeFile, so the files they validate are
// the files the daemon serves.
//
// The rule:
//   - Dot-files and dot-folders are skipped (listed in Ignored).
//   - Entity files (*.yaml, *.yml, *.json) and policy files (*.cue) are
//     listed by their path; other files are listed in Ignored, by name only:
//     they are never opened.
//   - A symbolic link named as an entity or policy file is read as the file
//     it leads to when every link on the way stays inside the root and the
//     target is a regular file; a link that leaves the root, a link cycle, a
//     link to a folder or to anything but a regular file is a problem at the
//     link's path. Links to folders are not followed (a folder is listed
//     once, by its real path). A file system reports links through
//     fs.ReadLinkFS (os.DirFS does); a Git tree serves a symlink entry that
//     way, its blob being the link's target, so Git and folder sources
//     follow the same rule.
//   - Anything that is not a regular file (a named pipe, a socket, a
//     device) is never opened: its type is checked first, so reading a
//     FIFO cannot block (issue 16 item 6).
//   - A file over MaxFileSize is a problem, found from its size before it
//     is read.

// TreeFile is one entity or policy file of a tree.
type TreeFile struct {
	// Path is the file's slash-separated path in the tree, the one
	// positions name (a symbolic link's own path).
	Path string
	// Target is the path to open: Path, or the regular file inside the
	// root that the symbolic link at Path leads to.
	Target string
	// Kind is FileEntity or FilePolicy.
	Kind FileKind
	// Size is the target's size in bytes, as listed.
	Size int64
}

// Listing is what ListTree found below a root.
type Listing struct {
	// Files are the entity and policy files to read, in path order.
	Files []TreeFile
	// Ignored lists the other files and the dot-files and dot-folders
	// skipped (folders with a trailing "/"), in walk order.
	Ignored []string
	// Problems holds the entries that are entity or policy files by name
	// but cannot be read by the rule: links leaving the root, non-regular
	// files, files over MaxFileSize, unreadable folders.
	Problems ErrorList
}

// ListTree lists the entity and policy files below root in fsys by the
// reading rule of this file, without reading any file's content. root is
// slash-separated and relative ("" is "."). A non-nil error means the root
// itself cannot be read, or ctx ended; problems with single entries are in
// the listing. ListTree is safe for concurrent use if fsys is.
func ListTree(ctx context.Context, fsys fs.FS, root string) (*Listing, error) {
	root, err := cleanRoot(root)
	if err != nil {
		return nil, err
	}
	l := &Listing{}
	err = fs.WalkDir(fsys, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == root {
				return err
			}
			l.Problems.add(Pos{File: p}, "", "cannot read: %v", unwrapPathError(err))
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p != root && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				l.Ignored = append(l.Ignored, p+"/")
				return fs.SkipDir
			}
			l.Ignored = append(l.Ignored, p)
			return nil
		}
		if d.IsDir() {
			return nil
		}
		kind := Classify(relPath(root, p))
		if kind == FileIgnored {
			l.Ignored = append(l.Ignored, p)
			return nil
		}
		f, err := statTreeFile(fsys, root, p, kind)
		if err != nil {
			l.Problems.add(Pos{File: p}, "", "%v", err)
			return nil
		}
		l.Files = append(l.Files, f)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", root, err)
	}
	slices.SortFunc(l.Files, func(a, b TreeFile) int { return strings.Compare(a.Path, b.Path) })
	return l, nil
}

// statTreeFile resolves p and checks that it leads to a regular file of at
// most MaxFileSize, without opening it.
func statTreeFile(fsys fs.FS, root, p string, kind FileKind) (TreeFile, error) {
	target, err := resolveInRoot(fsys, root, p)
	if err != nil {
		return TreeFile{}, err
	}
	fi, err := fs.Stat(fsys, target)
	if err != nil {
		return TreeFile{}, fmt.Errorf("cannot read: %w", unwrapPathError(err))
	}
	if err := checkRegular(fi); err != nil {
		return TreeFile{}, err
	}
	return TreeFile{Path: p, Target: target, Kind: kind, Size: fi.Size()}, nil
}

// checkRegular refuses anything but a regular file of at most MaxFileSize.
func checkRegular(fi fs.FileInfo) error {
	switch m := fi.Mode(); {
	case m.IsDir():
		return errors.New("is a folder (a symbolic link to a folder is not followed)")
	case m&fs.ModeNamedPipe != 0:
		return errors.New("not a regular file (a named pipe); it is not read")
	case m&fs.ModeSocket != 0:
		return errors.New("not a regular file (a socket); it is not read")
	case m&fs.ModeDevice != 0 || m&fs.ModeCharDevice != 0:
		return errors.New("not a regular file (a device); it is not read")
	case !m.IsRegular():
		return errors.New("not a regular file; it is not read")
	}
	if fi.Size() > MaxFileSize {
		return fmt.Errorf("file is %s; files are limited to 1 MiB", sizeString(int(fi.Size())))
	}
	return nil
}

// ReadTreeFile reads a file that ListTree listed: it checks again that the
// target is a regular file of at most MaxFileSize before opening it (the
// tree may have changed since it was listed) and reads at most that much.
// Errors do not repeat the path: report them at f.Path.
func ReadTreeFile(fsys fs.FS, f TreeFile) ([]byte, error) {
	fi, err := fs.Stat(fsys, f.Target)
	if err != nil {
		return nil, fmt.Errorf("cannot read: %w", unwrapPathError(err))
	}
	if err := checkRegular(fi); err != nil {
		return nil, err
	}
	file, err := fsys.Open(f.Target)
	if err != nil {
		return nil, fmt.Errorf("cannot read: %w", unwrapPathError(err))
	}
	defer file.Close()
	if fi, err := file.Stat(); err != nil {
		return nil, fmt.Errorf("cannot read: %w", unwrapPathError(err))
	} else if err := checkRegular(fi); err != nil {
		return nil, err
	}
	src, err := io.ReadAll(io.LimitReader(file, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read: %w", unwrapPathError(err))
	}
	if len(src) > MaxFileSize {
		return nil, errors.New("file is over 1 MiB; files are limited to 1 MiB")
	}
	return src, nil
}

// cleanRoot checks and cleans a root folder path.
func cleanRoot(root string) (string, error) {
	if root == "" {
		return ".", nil
	}
	clean := path.Clean(root)
	if !fs.ValidPath(clean) {
		return "", fmt.Errorf("root %q is not a valid path (slash-separated, relative, no ..)", root)
	}
	return clean, nil
}
