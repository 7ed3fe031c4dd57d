package source

// The Git source: go-git is imported by package source only (STYLE.md: one
// package per heavy library).

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"github.com/go-git/go-git/v5/storage"
	"github.com/go-git/go-git/v5/storage/filesystem"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/go-git/go-billy/v5/osfs"
	gossh "golang.org/x/crypto/ssh"
)

// GitOptions configure a Git source.
type GitOptions struct {
	// URL is the repository: https://, http://, ssh://, user@host:path,
	// git://, file://, or the path of a local repository or working copy
	// (read in place, never cloned; its committed state is what counts).
	URL string
	// Ref is a branch, a tag or a full commit id; "" follows the remote's
	// default branch (HEAD).
	Ref string
	// Dir keeps the clone (a bare repository) so that it survives restarts;
	// "" keeps it in memory.
	Dir string
	// Username and Password authenticate https; Password is typically a
	// token. A Username of "" sends "git".
	Username, Password string
	// CABundle holds extra PEM CA certificates trusted for https.
	CABundle []byte
	// SSHKey is the PEM private key for ssh; SSHKeyPassphrase decrypts it.
	SSHKey           []byte
	SSHKeyPassphrase string
	// KnownHosts are the known_hosts files that ssh host keys are checked
	// against; nil means ~/.ssh/known_hosts.
	KnownHosts []string
	// InsecureIgnoreHostKey accepts any ssh host key. Never the default.
	InsecureIgnoreHostKey bool
	// StallTimeout aborts a fetch that makes no progress for this long
	// (see git_watchdog.go); zero means DefaultFetchStallTimeout.
	StallTimeout time.Duration
	Logger       *slog.Logger
}

// LogValue keeps credentials out of logs: the URL is redacted and the
// password, key and passphrase are left out.
func (o GitOptions) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("url", redactURL(o.URL)),
		slog.String("ref", o.Ref),
		slog.String("dir", o.Dir),
		slog.Bool("password", o.Password != ""),
		slog.Bool("ssh_key", len(o.SSHKey) > 0),
	)
}

// Git follows one ref of a Git repository. It keeps a shallow
// clone without a checkout and reads files straight from commit trees,
// which is several times cheaper than a worktree for large repositories.
type Git struct {
	opts     GitOptions
	log      *slog.Logger
	display  string   // the URL, credentials redacted
	secrets  []string // strings redacted from every error
	auth     transport.AuthMethod
	local    bool   // opts.URL is a local repository, read in place
	pinned   string // opts.Ref when it is a full commit id
	fetchURL string

	mu    sync.Mutex // guards repo, store and last; held during Fetch and Open
	repo  *git.Repository
	store storage.Storer
	last  *gitListing // the tree returned last
	// objects is the store's cache of decoded objects; nil in memory.
	objects *cache.ObjectLRU
}

// objectCacheSize bounds go-git's cache of decoded objects (its default is
// 96 MiB): trees are read once per revision and blobs once per change, so a
// small cache loses little and keeps the daemon's memory flat.
const objectCacheSize = 16 * cache.MiByte

var commitID = regexp.MustCompile(`^[0-9a-f]{40}$`)

// remoteName and targetRef are where the clone keeps what it fetched.
const (
	remoteName = "origin"
	targetRef  = plumbing.ReferenceName("refs/certops/target")
)

// NewGit checks opts and returns a Source that follows the repository.
// It does not touch the network.
func NewGit(opts GitOptions) (*Git, error) {
	if opts.URL == "" {
		return nil, errors.New("git: empty repository URL")
	}
	o := &Git{opts: opts, log: opts.Logger, fetchURL: opts.URL}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	if commitID.MatchString(opts.Ref) {
		o.pinned = opts.Ref
	}
	if opts.Password != "" {
		o.secrets = append(o.secrets, opts.Password)
	}
	if fi, err := os.Stat(opts.URL); err == nil && fi.IsDir() {
		o.local = true
		o.display = opts.URL
		return o, nil
	}
	ep, err := transport.NewEndpoint(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("git: repository URL %s: %w", redactURL(opts.URL), err)
	}
	if ep.Protocol == "file" && !strings.HasPrefix(opts.URL, "file://") {
		// Neither a URL nor user@host:path: a local path, which must exist.
		return nil, fmt.Errorf("git: source %s: no such directory, and not a URL", opts.URL)
	}
	if ep.Password != "" {
		o.secrets = append(o.secrets, ep.Password, url.QueryEscape(ep.Password))
	}
	o.display = redactURL(opts.URL)
	switch ep.Protocol {
	case "https", "http":
		switch {
		case opts.Password != "":
			user := opts.Username
			if user == "" {
				user = ep.User
			}
			if user == "" {
				user = "git"
			}
			o.auth = &githttp.BasicAuth{Username: user, Password: opts.Password}
		case ep.Password != "":
			o.auth = &githttp.BasicAuth{Username: ep.User, Password: ep.Password}
		}
	case "ssh":
		if len(opts.SSHKey) == 0 {
			return nil, fmt.Errorf("git: %s: ssh needs a private key (--ssh-key)", o.display)
		}
		user := ep.User
		if user == "" {
			user = "git"
		}
		keys, err := gitssh.NewPublicKeys(user, opts.SSHKey, opts.SSHKeyPassphrase)
		if err != nil {
			return nil, fmt.Errorf("git: ssh key: %w", err)
		}
		if opts.InsecureIgnoreHostKey {
			keys.HostKeyCallback = gossh.InsecureIgnoreHostKey()
		} else {
			files := opts.KnownHosts
			if len(files) == 0 {
				home, err := os.UserHomeDir()
				if err != nil {
					return nil, fmt.Errorf("git: known_hosts: %w", err)
				}
				files = []string{filepath.Join(home, ".ssh", "known_hosts")}
			}
			for _, f := range files {
				if _, err := os.Stat(f); err != nil {
					return nil, fmt.Errorf("git: known_hosts (unknown ssh hosts are refused; pass --known-hosts or, insecurely, --insecure-ignore-host-key): %w", err)
				}
			}
			db, err := gitssh.NewKnownHostsDb(files...)
			if err != nil {
				return nil, fmt.Errorf("git: known_hosts: %w", err)
			}
			keys.HostKeyCallback = db.HostKeyCallback()
			keys.HostKeyAlgorithms = db.HostKeyAlgorithms(net.JoinHostPort(ep.Host, fmt.Sprint(portOr(ep.Port, 22))))
		}
		o.auth = keys
	case "git", "file":
	default:
		return nil, fmt.Errorf("git: %s: unsupported protocol %q", o.display, ep.Protocol)
	}
	return o, nil
}

func portOr(p, def int) int {
	if p == 0 {
		return def
	}
	return p
}

var _ Opener = (*Git)(nil)

// String is the URL (credentials redacted) and the ref, as "URL@ref".
func (o *Git) String() string {
	if o.opts.Ref != "" {
		return o.display + "@" + o.opts.Ref
	}
	return o.display
}

// Fetch brings the clone up to date with the ref and returns the tree of
// the commit it points to. A cheap ref listing comes first: when the ref
// still points to a commit the clone has (no change, or a rollback to a
// commit seen before), nothing is downloaded. Otherwise it fetches
// incrementally and falls back to a fresh shallow clone when that fails,
// which is what a force-push can cause (go-git issue 1443).
func (o *Git) Fetch(ctx context.Context) (*Tree, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	ctx, wd := startWatchdog(ctx, o.opts.StallTimeout)
	t, err := o.fetch(ctx)
	if stall := wd.stop(ctx); stall != nil && err != nil {
		err = fmt.Errorf("git: fetch from %s: %w", o.display, stall)
	}
	if err != nil {
		return nil, o.redact(err)
	}
	return t, nil
}

func (o *Git) fetch(ctx context.Context) (*Tree, error) {
	if o.local {
		return o.fetchLocal()
	}
	if err := o.open(); err != nil {
		return nil, err
	}
	if o.pinned != "" {
		if t, err := o.treeOf(plumbing.NewHash(o.pinned)); err == nil {
			return t, nil // a commit never changes: no network needed
		}
		return o.fetchPinned(ctx)
	}
	remote, err := o.repo.Remote(remoteName)
	if err != nil {
		return nil, fmt.Errorf("git: %w", err)
	}
	refs, err := remote.ListContext(ctx, &git.ListOptions{Auth: o.auth, CABundle: o.opts.CABundle, Timeout: 60})
	if err != nil {
		return nil, fmt.Errorf("git: list refs of %s: %w", o.display, err)
	}
	name, hash, err := o.pick(refs)
	if err != nil {
		return nil, err
	}
	if t, err := o.treeOf(hash); err == nil {
		return t, nil
	}
	spec := config.RefSpec("+" + name.String() + ":" + targetRef.String())
	start := time.Now()
	if !o.empty() {
		err := o.fetchSpec(ctx, spec, 0)
		if err == nil {
			var t *Tree
			if t, err = o.treeOf(hash); err == nil {
				o.log.Debug("fetched", "ref", name.String(), "revision", t.Revision, "duration", time.Since(start))
				return t, nil
			}
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("git: fetch %s from %s: %w", name, o.display, ctx.Err())
		}
		if isLocalWriteFault(err) {
			return nil, fmt.Errorf("git: fetch %s into the clone in %s (kept; a fresh clone would fail the same way): %w", name, o.opts.Dir, err)
		}
		o.log.Info("incremental fetch failed; cloning afresh", "ref", name.String(), "err", o.redact(err))
		if err := o.reset(); err != nil {
			return nil, err
		}
	}
	if err := o.fetchSpec(ctx, spec, 1); err != nil {
		return nil, fmt.Errorf("git: fetch %s from %s: %w", name, o.display, err)
	}
	t, err := o.treeOf(hash)
	if err != nil {
		return nil, fmt.Errorf("git: %s after fetch: %w", name, err)
	}
	o.log.Debug("cloned", "ref", name.String(), "revision", t.Revision, "duration", time.Since(start))
	return t, nil
}

// fetchPinned fetches the whole history of every branch and tag and looks
// for the pinned commit in it.
func (o *Git) fetchPinned(ctx context.Context) (*Tree, error) {
	err := o.repo.FetchContext(ctx, &git.FetchOptions{
		RemoteName: remoteName,
		RefSpecs:   []config.RefSpec{"+refs/heads/*:refs/certops/heads/*", "+refs/tags/*:refs/tags/*"},
		Auth:       o.auth,
		CABundle:   o.opts.CABundle,
		Tags:       git.NoTags,
		Force:      true,
	})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return nil, fmt.Errorf("git: fetch %s: %w", o.display, err)
	}
	t, err := o.treeOf(plumbing.NewHash(o.pinned))
	if err != nil {
		return nil, fmt.Errorf("git: commit %s not found in any branch or tag of %s: %w", o.pinned, o.display, err)
	}
	return t, nil
}

func (o *Git) fetchSpec(ctx context.Context, spec config.RefSpec, depth int) error {
	err := o.repo.FetchContext(ctx, &git.FetchOptions{
		RemoteName: remoteName,
		RefSpecs:   []config.RefSpec{spec},
		Depth:      depth,
		Auth:       o.auth,
		CABundle:   o.opts.CABundle,
		Tags:       git.NoTags,
		Force:      true,
	})
	if errors.Is(err, git.NoErrAlreadyUpToDate) {
		return nil
	}
	return err
}

// pick finds the ref to follow in a remote's listing.
func (o *Git) pick(refs []*plumbing.Reference) (plumbing.ReferenceName, plumbing.Hash, error) {
	byName := make(map[plumbing.ReferenceName]*plumbing.Reference, len(refs))
	for _, r := range refs {
		byName[r.Name()] = r
	}
	var candidates []plumbing.ReferenceName
	switch ref := o.opts.Ref; {
	case ref == "":
		candidates = []plumbing.ReferenceName{plumbing.HEAD}
	case strings.HasPrefix(ref, "refs/"):
		candidates = []plumbing.ReferenceName{plumbing.ReferenceName(ref)}
	default:
		candidates = []plumbing.ReferenceName{plumbing.NewBranchReferenceName(ref), plumbing.NewTagReferenceName(ref)}
	}
	for _, c := range candidates {
		r, ok := byName[c]
		for i := 0; ok && r.Type() == plumbing.SymbolicReference && i < 5; i++ {
			r, ok = byName[r.Target()]
		}
		if ok && r.Type() == plumbing.HashReference {
			return c, r.Hash(), nil
		}
	}
	what := o.opts.Ref
	if what == "" {
		what = "HEAD"
	}
	return "", plumbing.ZeroHash, fmt.Errorf("git: ref %s not found in %s (branch deleted or never pushed?)", what, o.display)
}

// open opens the clone, or creates an empty one.
func (o *Git) open() error {
	if o.repo != nil {
		return nil
	}
	if err := o.newStore(); err != nil {
		return err
	}
	repo, err := git.Open(o.store, nil)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		return o.initRepo()
	}
	if err != nil {
		return fmt.Errorf("git: open clone in %s: %w", o.opts.Dir, err)
	}
	o.repo = repo
	// The clone follows one URL; a changed --source starts afresh.
	r, err := repo.Remote(remoteName)
	if err != nil || len(r.Config().URLs) != 1 || r.Config().URLs[0] != o.fetchURL {
		return o.reset()
	}
	return nil
}

// reset throws the clone away and starts an empty one.
func (o *Git) reset() error {
	if c, ok := o.store.(io.Closer); ok {
		c.Close()
	}
	o.repo, o.store = nil, nil
	if o.opts.Dir != "" {
		if err := os.RemoveAll(o.opts.Dir); err != nil {
			return fmt.Errorf("git: remove clone: %w", err)
		}
	}
	if err := o.newStore(); err != nil {
		return err
	}
	return o.initRepo()
}

// newStore opens the clone's object storage: a folder, or memory.
func (o *Git) newStore() error {
	if o.opts.Dir == "" {
		o.store = memory.NewStorage()
		return nil
	}
	if err := os.MkdirAll(o.opts.Dir, 0o700); err != nil {
		return fmt.Errorf("git: clone folder: %w", err)
	}
	o.objects = cache.NewObjectLRU(objectCacheSize)
	o.store = filesystem.NewStorage(osfs.New(o.opts.Dir), o.objects)
	return nil
}

// ReleaseObjects empties the cache of decoded objects: reading every file
// of a large revision (a cold start) fills it with blobs that are read
// once, ~13 MiB for 10,000 entity files, which the daemon would keep until
// other objects pushed them out. Later reads decode from the clone again.
func (o *Git) ReleaseObjects() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.objects != nil {
		o.objects.Clear()
	}
}

// initRepo creates an empty bare repository in the store, with the remote.
func (o *Git) initRepo() error {
	repo, err := git.Init(o.store, nil)
	if err != nil {
		return fmt.Errorf("git: init clone: %w", err)
	}
	if _, err := repo.CreateRemote(&config.RemoteConfig{Name: remoteName, URLs: []string{o.fetchURL}}); err != nil {
		return fmt.Errorf("git: %w", err)
	}
	o.repo = repo
	return nil
}

// empty reports whether the clone has nothing fetched yet.
func (o *Git) empty() bool {
	_, err := o.repo.Reference(targetRef, false)
	return err != nil
}

// Open returns the tree of a revision fetched before, from the clone alone.
func (o *Git) Open(ctx context.Context, revision string) (*Tree, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.local {
		repo, err := openLocal(o.opts.URL)
		if err != nil {
			return nil, fmt.Errorf("git: open %s: %w", o.display, err)
		}
		return treeOfRepo(repo, o.withTag(repo, plumbing.NewHash(revision)))
	}
	if o.opts.Dir == "" {
		return nil, errors.New("git: no local clone to restore from")
	}
	if err := o.open(); err != nil {
		return nil, err
	}
	return o.treeOf(o.withTag(o.repo, plumbing.NewHash(revision)))
}

// fetchLocal resolves the ref in a local repository, read in place.
func (o *Git) fetchLocal() (*Tree, error) {
	repo, err := openLocal(o.opts.URL)
	if err != nil {
		return nil, fmt.Errorf("git: open %s: %w", o.display, err)
	}
	rev := o.opts.Ref
	if rev == "" {
		rev = "HEAD"
	}
	h, err := resolveKeepingTag(repo, rev)
	if err != nil {
		return nil, fmt.Errorf("git: resolve %s in %s: %w", rev, o.display, err)
	}
	return o.treeIn(repo, h)
}

// openLocal opens a local repository: a bare one, a working copy, or a
// folder inside a working copy.
func openLocal(dir string) (*git.Repository, error) {
	repo, err := git.PlainOpen(dir)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		repo, err = git.PlainOpenWithOptions(dir, &git.PlainOpenOptions{DetectDotGit: true})
	}
	return repo, err
}

// treeOf returns the tree of the commit h (or of the commit an annotated
// tag h points to) in the clone. The tree returned last is kept: the same
// commit gives it back as it is (a poll without a change lists nothing),
// and another is listed from it by subtree hashes (see listFrom).
func (o *Git) treeOf(h plumbing.Hash) (*Tree, error) {
	if last := o.last; last != nil && last.repo == o.repo && last.id == h {
		return last.tree, nil
	}
	return o.treeIn(o.repo, h)
}

// treeIn lists the tree of h in repo from the tree returned last, when it
// was read from the same repository: the clone, or the local repository
// (opened again at each Fetch, the same objects on disk).
func (o *Git) treeIn(repo *git.Repository, h plumbing.Hash) (*Tree, error) {
	last := o.last
	if last != nil && last.repo != repo && !o.local {
		last = nil // another clone: its objects are gone
	}
	t, root, err := listTree(repo, h, last)
	if err != nil {
		return nil, err
	}
	o.last = &gitListing{repo: repo, id: h, root: root, tree: t}
	return t, nil
}

// treeOfRepo lists the tree of the commit h (or of the commit an annotated
// tag h points to) without reading any blob.
func treeOfRepo(repo *git.Repository, h plumbing.Hash) (*Tree, error) {
	t, _, err := listTree(repo, h, nil)
	return t, err
}

// listTree lists the tree of the commit h (or of the commit an annotated
// tag h points to) without reading any blob, and returns it with its root
// tree's hash. With a base listed before from the same repository, only
// the subtrees whose hash differs from base's are read (listFrom).
func listTree(repo *git.Repository, h plumbing.Hash, base *gitListing) (*Tree, plumbing.Hash, error) {
	commit, err := repo.CommitObject(h)
	var tag *object.Tag
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		if t, terr := repo.TagObject(h); terr == nil {
			tag = t
			commit, err = tag.Commit()
		}
	}
	if err != nil {
		return nil, plumbing.ZeroHash, fmt.Errorf("commit %s: %w", h, err)
	}
	signed, err := signedRevision(repo, commit.Hash, tag)
	if err != nil {
		return nil, plumbing.ZeroHash, err
	}
	tree, err := commit.Tree()
	if err != nil {
		return nil, plumbing.ZeroHash, fmt.Errorf("tree of %s: %w", commit.Hash, err)
	}
	var files, links map[string]string
	var changed []string
	incremental := false
	if base != nil {
		files, changed, incremental, err = listFrom(repo, base, tree)
		if err != nil {
			return nil, plumbing.ZeroHash, fmt.Errorf("tree of %s: %w", commit.Hash, err)
		}
	}
	if !incremental {
		if files, links, err = listAll(repo, tree); err != nil {
			return nil, plumbing.ZeroHash, fmt.Errorf("tree of %s: %w", commit.Hash, err)
		}
	}
	// A file's blob is named by its content id: no second map of hashes.
	t := NewTree(commit.Hash.String(), files, func(name string) ([]byte, error) {
		blob, err := repo.BlobObject(plumbing.NewHash(files[name]))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		r, err := blob.Reader()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		defer r.Close()
		return io.ReadAll(r)
	})
	t.Links = links
	t.Signed = signed
	t.sizeOf = func(name string) (int64, error) { return blobSize(repo, plumbing.NewHash(files[name])) }
	if incremental {
		t.setDelta(base.tree, changed)
	}
	return t, tree.Hash, nil
}

// listAll lists every file and symbolic link of tree: path -> blob id, and
// path -> target. The files' paths and ids are packed into one block
// (packListing): the listing is kept across fetches, the next one's copy
// shares its strings.
func listAll(repo *git.Repository, tree *object.Tree) (files, links map[string]string, err error) {
	type blob struct {
		path string
		hash plumbing.Hash
	}
	var blobs []blob
	w := object.NewTreeWalker(tree, true, nil)
	defer w.Close()
	for {
		name, entry, err := w.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, err
		}
		switch kindOf(&entry) {
		case kindFile:
			blobs = append(blobs, blob{name, entry.Hash})
		case kindLink:
			// The blob holds the link's target; the loader reads the link
			// as that file when it is inside the tree (schema's rule).
			target, err := readLinkBlob(repo, entry.Hash)
			if err != nil {
				return nil, nil, fmt.Errorf("symbolic link %s: %w", name, err)
			}
			if links == nil {
				links = map[string]string{}
			}
			links[name] = target
		}
		// Folders and submodules are neither files nor links.
	}
	files = make(map[string]string, len(blobs))
	packListing(len(blobs), func(i int, scratch []byte) (string, []byte) {
		return blobs[i].path, hex.AppendEncode(scratch, blobs[i].hash[:])
	}, func(_ int, p, id string) { files[p] = id })
	return files, links, nil
}

// OpenRevision returns the tree of a local repository (or working copy) at
// rev, read through go-git: anything `git rev-parse` accepts for a commit
// (a branch, tag, commit id, HEAD~1). Files are read from the object store
// when opened, one at a time (the result is a [*Tree]). An empty rev is
// the working tree on disk, uncommitted changes included. `certops diff
// --base` uses it.
func OpenRevision(ctx context.Context, repoDir, rev string) (fs.FS, error) {
	if rev == "" {
		return os.DirFS(repoDir), nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	repo, err := openLocal(repoDir)
	if err != nil {
		return nil, fmt.Errorf("open repository %s: %w", repoDir, err)
	}
	h, err := resolveKeepingTag(repo, rev)
	if err != nil {
		return nil, fmt.Errorf("resolve %s in %s: %w", rev, repoDir, err)
	}
	return treeOfRepo(repo, h)
}

// redact removes credentials from an error's text. The result does not
// wrap err, so no caller can print the original text by unwrapping.
func (o *Git) redact(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if strings.Contains(msg, o.opts.URL) {
		msg = strings.ReplaceAll(msg, o.opts.URL, o.display)
	}
	for _, s := range o.secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "xxxxx")
		}
	}
	if msg == err.Error() {
		return err
	}
	return errors.New(msg)
}

// redactURL hides the password of a URL's user information.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	return u.Redacted()
}

// maxLinkTarget bounds the blob of a symlink entry, which holds the link's
// target path (PATH_MAX on Linux).
const maxLinkTarget = 4096

// readLinkBlob returns the target of a symlink entry: its blob's content.
func readLinkBlob(repo *git.Repository, h plumbing.Hash) (string, error) {
	blob, err := repo.BlobObject(h)
	if err != nil {
		return "", err
	}
	if blob.Size > maxLinkTarget {
		return "", fmt.Errorf("target is %d bytes, longer than a path", blob.Size)
	}
	r, err := blob.Reader()
	if err != nil {
		return "", err
	}
	defer r.Close()
	b, err := io.ReadAll(io.LimitReader(r, maxLinkTarget+1))
	if err != nil {
		return "", err
	}
	return string(b), nil
}
