/* intent.c — see intent.h. The rules (DESIGN.md "Only a deliberate mkdir
 * rents"; primefs(1) WHAT RENTS):
 *  - a copy, archive or sync tool or a file manager never rents;
 *  - mkdir and install rent only a path that is exactly one of their
 *    operands. `mkdir -p pods/a/b` chdirs into pods and makes "a" while its
 *    argument reads "pods/a\0b" (coreutils writes a NUL over the slash):
 *    an operand that the next argument could continue into a deeper path
 *    is a doubt, and a doubt is refused;
 *  - any other program's mkdir() rents, and is taken back when the program
 *    at once creates something inside (intent_made_inside) other than a
 *    named job (pods/x/jobs/NAME). */
#include "intent.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A command line longer than this is read only this far. */
#define CMDLINE_MAX  (256u * 1024)
#define SYMLINK_HOPS 40
#define ANCESTORS    64

/* Whole small file: NUL-terminated, its length in *len; NULL on error. */
static char *read_small(const char *path, size_t cap, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	struct buf b;
	buf_init(&b);
	char chunk[4096];
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof chunk);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		buf_add(&b, chunk, (size_t)n);
		if (b.len >= cap)
			break;
	}
	close(fd);
	*len = b.len;
	buf_addc(&b, '\0'); /* an empty file still gives "" */
	return b.data;
}

/* A "Key:\tN" line of /proc/PID/status, or -1. */
static pid_t status_field(pid_t pid, const char *key)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	size_t len;
	char *s = read_small(path, 8192, &len);
	if (!s)
		return -1;
	pid_t v = -1;
	size_t klen = strlen(key);
	for (char *line = s; line && *line;) {
		if (!strncmp(line, key, klen) && line[klen] == ':') {
			v = (pid_t)strtol(line + klen + 1, NULL, 10);
			break;
		}
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	free(s);
	return v;
}

int intent_caller_read(pid_t pid, struct intent_caller *c)
{
	memset(c, 0, sizeof *c);
	if (pid <= 0)
		return -ESRCH;
	c->tgid = status_field(pid, "Tgid");
	if (c->tgid <= 0)
		return -ESRCH;
	char path[64];
	size_t len;
	/* The process's name, not the thread's: a file manager's worker
	 * thread is called "pool-..." */
	snprintf(path, sizeof path, "/proc/%d/comm", (int)c->tgid);
	c->comm = read_small(path, 64, &len);
	if (c->comm && len && c->comm[len - 1] == '\n')
		c->comm[len - 1] = '\0';
	snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
	c->cmdline = read_small(path, CMDLINE_MAX, &c->cmdline_len);
	snprintf(path, sizeof path, "/proc/%d/cwd", (int)pid);
	char cwd[PATH_MAX];
	ssize_t n = readlink(path, cwd, sizeof cwd - 1);
	if (n > 0 && cwd[0] == '/') {
		cwd[n] = '\0';
		c->cwd = xstrdup(cwd);
	}
	return c->comm && c->cmdline && c->cwd ? 0 : -ESRCH;
}

void intent_caller_free(struct intent_caller *c)
{
	free(c->comm);
	free(c->cmdline);
	free(c->cwd);
	memset(c, 0, sizeof *c);
}

/* --- who the caller is ---------------------------------------------- */

enum tool { T_OTHER, T_MKDIR, T_INSTALL, T_COPY };

/* Programs whose mkdirs are made on the way to something else: they copy,
 * move, unpack, sync or download trees, or they are file managers (whose
 * "New folder" is no way to rent a GPU). By process name (comm, at most
 * 15 characters) or by the base name of argv[0]. */
static const char *const copy_tools[] = {
    /* copy, move, sync */
    "cp", "mv", "rsync", "rclone", "scp", "sftp", "sftp-server", "sshd", "lftp",
    "wget", "curl", "git", "svn", "hg", "patch",
    /* archives */
    "tar", "gtar", "bsdtar", "cpio", "bsdcpio", "pax", "unzip", "7z", "7za",
    "7zr", "unrar", "unsquashfs", "ar", "file-roller", "engrampa", "ark",
    "xarchiver",
    /* file managers and their helpers */
    "nautilus", "nemo", "caja", "thunar", "Thunar", "dolphin", "pcmanfm",
    "pcmanfm-qt", "konqueror", "krusader", "spacefm", "doublecmd", "mc",
    "ranger", "nnn", "lf", "vifm", "xfe", "gvfsd", "gvfsd-fuse", "gio",
    "kioworker", "kioslave5", "kio_file"};

static enum tool tool_of(const char *name)
{
	if (!strcmp(name, "mkdir"))
		return T_MKDIR;
	if (!strcmp(name, "install"))
		return T_INSTALL;
	for (size_t i = 0; i < sizeof copy_tools / sizeof *copy_tools; i++)
		if (!strcmp(name, copy_tools[i]))
			return T_COPY;
	return T_OTHER;
}

/* The stronger of two: a copy tool beats mkdir beats any other. */
static enum tool worst(enum tool a, enum tool b)
{
	if (a == T_COPY || b == T_COPY)
		return T_COPY;
	return a != T_OTHER ? a : b;
}

/* --- paths ------------------------------------------------------------ */

static bool within(const char *p, const char *mnt)
{
	size_t n = strlen(mnt);
	return !strncmp(p, mnt, n) && (p[n] == '\0' || p[n] == '/');
}

/* The physical absolute path that `tok`, resolved against cwd, names.
 * Symlinks are followed outside the mount (lstat, readlink: the caller's
 * own syscall has just walked the same path); inside it, where nothing on
 * the way to a pod is a symlink, the walk is lexical and asks nothing of
 * the filesystem we serve. NULL when a symlink loop is met. */
static char *resolve(const char *cwd, const char *tok, const char *mnt)
{
	struct buf p, rest;
	buf_init(&p);
	buf_init(&rest);
	if (tok[0] != '/')
		buf_adds(&p, strcmp(cwd, "/") ? cwd : "");
	buf_adds(&rest, tok);
	int hops = 0;
	size_t at = 0; /* next component of rest */
	while (at < rest.len) {
		size_t end = at;
		while (end < rest.len && rest.data[end] != '/')
			end++;
		size_t clen = end - at;
		const char *comp = rest.data + at;
		size_t next = end < rest.len ? end + 1 : end;
		if (clen == 0 || (clen == 1 && comp[0] == '.')) {
			at = next;
			continue;
		}
		if (clen == 2 && comp[0] == '.' && comp[1] == '.') {
			char *slash = p.data ? strrchr(p.data, '/') : NULL;
			if (slash) {
				p.len = (size_t)(slash - p.data);
				p.data[p.len] = '\0';
			}
			at = next;
			continue;
		}
		size_t plen = p.len;
		buf_addc(&p, '/');
		buf_add(&p, comp, clen);
		at = next;
		struct stat st;
		if (within(p.data, mnt) || lstat(p.data, &st) ||
		    !S_ISLNK(st.st_mode))
			continue;
		char target[PATH_MAX];
		ssize_t n = readlink(p.data, target, sizeof target - 1);
		if (n <= 0 || ++hops > SYMLINK_HOPS) {
			buf_free(&p);
			buf_free(&rest);
			return NULL;
		}
		target[n] = '\0';
		/* The link's target, then what was left to walk. */
		struct buf nr;
		buf_init(&nr);
		buf_adds(&nr, target);
		buf_addc(&nr, '/');
		buf_add(&nr, rest.data + at, rest.len - at);
		buf_free(&rest);
		rest = nr;
		at = 0;
		p.len = target[0] == '/' ? 0 : plen;
		p.data[p.len] = '\0';
	}
	buf_free(&rest);
	if (!p.len)
		buf_addc(&p, '/');
	return buf_steal(&p);
}

/* Components of a path, without empty ones and ".": count, or -1 when one
 * is "..". */
static int split(const char *s, const char **comp, size_t *clen, int max)
{
	int n = 0;
	while (*s) {
		while (*s == '/')
			s++;
		const char *e = s;
		while (*e && *e != '/')
			e++;
		size_t l = (size_t)(e - s);
		if (l == 2 && s[0] == '.' && s[1] == '.')
			return -1;
		if (l && !(l == 1 && s[0] == '.')) {
			if (n == max)
				return -1;
			comp[n] = s;
			clen[n] = l;
			n++;
		}
		s = e;
	}
	return n;
}

/* Does operand tok name mnt+path? Either as it stands, against the
 * caller's working directory, or as `mkdir -p` and `install -d` use it:
 * they chdir into each parent and make the last component there, so the
 * working directory is the parent of mnt+path, and tok's last components
 * must be path's last ones. */
static bool names(const struct intent_caller *c, const char *mnt,
		  const char *path, const char *tok)
{
	struct buf want;
	buf_init(&want);
	buf_adds(&want, mnt);
	buf_adds(&want, path);
	char *got = resolve(c->cwd, tok, mnt);
	bool ok = got && !strcmp(got, want.data);
	free(got);
	if (!ok && tok[0] != '/') {
		/* The parent of want, as the working directory. */
		char *slash = strrchr(want.data, '/');
		*slash = '\0';
		if (!strcmp(c->cwd, want.data)) {
			const char *tc[64], *pc[64];
			size_t tl[64], pl[64];
			int nt = split(tok, tc, tl, 64);
			int np = split(path, pc, pl, 64);
			ok = nt > 0 && np > 0;
			for (int i = 1; ok && i <= nt && i <= np; i++)
				ok =
				    tl[nt - i] == pl[np - i] &&
				    !memcmp(tc[nt - i], pc[np - i], tl[nt - i]);
		}
	}
	buf_free(&want);
	return ok;
}

/* --- the decision ----------------------------------------------------- */

struct tokens {
	const char **v;
	size_t n;
};

/* argv as the raw bytes read now: a NUL that a program wrote into its own
 * argument splits it in two here. */
static void tokenize(const struct intent_caller *c, struct tokens *t)
{
	t->n = 0;
	t->v = xcalloc(c->cmdline_len + 1, sizeof *t->v);
	size_t i = 0;
	while (i < c->cmdline_len) {
		t->v[t->n++] = c->cmdline + i;
		i += strlen(c->cmdline + i) + 1;
	}
}

/* Does long option `name` (what follows "--", up to '=') take the next
 * argument as its value? getopt_long accepts any unique prefix. */
static bool long_takes_arg(enum tool kind, const char *name, size_t len)
{
	static const char *const mkdir_arg[] = {"mode", NULL};
	static const char *const install_arg[] = {
	    "group",	     "mode", "owner", "suffix", "target-directory",
	    "strip-program", NULL};
	const char *const *v = kind == T_MKDIR ? mkdir_arg : install_arg;
	for (; *v; v++)
		if (len && !strncmp(*v, name, len))
			return true;
	return false;
}

static enum intent operands(const struct intent_caller *c, enum tool kind,
			    const char *mnt, const char *path, struct buf *why)
{
	const char *tname = kind == T_MKDIR ? "mkdir" : "install";
	struct tokens t;
	tokenize(c, &t);
	/* install -d and -D always make parents; mkdir only with -p. */
	bool parents = kind == T_INSTALL;
	const char *short_arg = kind == T_MKDIR ? "m" : "gmoSt";
	bool *operand = xcalloc(t.n + 1, sizeof *operand);
	bool dashdash = false, skip = false;
	for (size_t i = 1; i < t.n; i++) {
		const char *a = t.v[i];
		if (skip) {
			skip = false;
		} else if (dashdash || a[0] != '-' || !a[1]) {
			operand[i] = true;
		} else if (!strcmp(a, "--")) {
			dashdash = true;
		} else if (a[1] == '-') {
			const char *name = a + 2;
			size_t len = strcspn(name, "=");
			if (kind == T_MKDIR && len &&
			    !strncmp("parents", name, len))
				parents = true;
			if (!name[len] && long_takes_arg(kind, name, len))
				skip = true;
		} else {
			for (size_t j = 1; a[j]; j++) {
				if (a[j] == 'p' && kind == T_MKDIR)
					parents = true;
				if (strchr(short_arg, a[j])) {
					skip = !a[j + 1];
					break;
				}
			}
		}
	}
	enum intent res = INTENT_INCIDENTAL;
	bool doubt = false;
	for (size_t i = 1; i < t.n && res != INTENT_DELIBERATE; i++) {
		if (!operand[i] || !names(c, mnt, path, t.v[i]))
			continue;
		/* "pods/a" then "b": the bytes could be "pods/a/b" with a NUL
		 * written over the slash while its parents are made. */
		const char *next = i + 1 < t.n ? t.v[i + 1] : NULL;
		if (parents && next && next[0] && next[0] != '-') {
			if (!doubt)
				buf_printf(why,
					   "%s makes %s on its way to %s/%s "
					   "(were they two operands, its "
					   "arguments could not tell: rent one "
					   "pod per mkdir)",
					   tname, t.v[i], t.v[i], next);
			doubt = true;
			continue;
		}
		res = INTENT_DELIBERATE;
	}
	if (res == INTENT_INCIDENTAL && !doubt)
		buf_printf(why,
			   "it is not one of %s's operands: %s makes it on its "
			   "way to a deeper path",
			   tname, tname);
	if (res == INTENT_DELIBERATE)
		buf_reset(why);
	free(operand);
	free(t.v);
	return res;
}

enum intent intent_decide(const struct intent_caller *c, const char *mnt,
			  const char *path, struct buf *why)
{
	if (!c->comm || !c->cmdline || !c->cmdline_len || !c->cwd) {
		buf_adds(why, "the calling process cannot be seen in /proc, "
			      "so its intent is unknown");
		return INTENT_INCIDENTAL;
	}
	const char *argv0 = c->cmdline;
	const char *base = strrchr(argv0, '/');
	base = base ? base + 1 : argv0;
	enum tool kind = worst(tool_of(c->comm), tool_of(base));
	switch (kind) {
	case T_OTHER:
		return INTENT_DELIBERATE;
	case T_COPY:
		buf_printf(why,
			   "%s (pid %d) copies, moves, unpacks or syncs: its "
			   "mkdir is made on the way to something else",
			   c->comm, (int)c->tgid);
		return INTENT_INCIDENTAL;
	default:
		if (!mnt) {
			buf_adds(why, "the mount point is unknown, so the "
				      "operands cannot be checked");
			return INTENT_INCIDENTAL;
		}
		return operands(c, kind, mnt, path, why);
	}
}

enum intent intent_of_mkdir(pid_t pid, const char *mnt, const char *path,
			    struct buf *why)
{
	struct intent_caller c;
	intent_caller_read(pid, &c);
	enum intent res = intent_decide(&c, mnt, path, why);
	intent_caller_free(&c);
	return res;
}

/* --- after the fact --------------------------------------------------- */

void intent_note_rent(struct intent_recent *r, pid_t pid, const char *name)
{
	pid_t tgid = status_field(pid, "Tgid");
	if (tgid <= 0)
		return;
	double now = now_monotonic();
	pthread_mutex_lock(&r->mu);
	size_t slot = 0; /* a free one, else the oldest */
	for (size_t i = 0; i < INTENT_RECENT; i++) {
		if (!r->v[i].name) {
			slot = i;
			break;
		}
		if (r->v[i].when < r->v[slot].when)
			slot = i;
	}
	free(r->v[slot].name);
	r->v[slot].name = xstrdup(name);
	r->v[slot].tgid = tgid;
	r->v[slot].when = now;
	pthread_mutex_unlock(&r->mu);
}

/* The pod name in "/pods/NAME/more", or NULL. */
static char *pod_of(const char *path)
{
	static const char prefix[] = "/pods/";
	if (strncmp(path, prefix, sizeof prefix - 1))
		return NULL;
	const char *name = path + sizeof prefix - 1;
	const char *slash = strchr(name, '/');
	if (!slash || slash == name || !slash[1])
		return NULL;
	return xstrndup(name, (size_t)(slash - name));
}

/* The slot of a recent rent of name (by any process), or -1. */
static int recent_slot(struct intent_recent *r, const char *name, double now,
		       pid_t tgid)
{
	for (int i = 0; i < INTENT_RECENT; i++)
		if (r->v[i].name && !strcmp(r->v[i].name, name) &&
		    now - r->v[i].when <= INTENT_WINDOW &&
		    (tgid < 0 || r->v[i].tgid == tgid))
			return i;
	return -1;
}

bool intent_made_inside(struct intent_recent *r, pid_t pid, const char *path,
			char **name)
{
	*name = NULL;
	char *pod = pod_of(path);
	if (!pod)
		return false;
	/* pods/x/jobs/NAME: a named job, made on purpose in a pod that
	 * exists (a script rents, then makes its jobs). */
	const char *rest = path + strlen("/pods/") + strlen(pod);
	if (!strncmp(rest, "/jobs/", 6) && rest[6] && !strchr(rest + 6, '/')) {
		free(pod);
		return false;
	}
	double now = now_monotonic();
	pthread_mutex_lock(&r->mu);
	bool any = recent_slot(r, pod, now, -1) >= 0;
	pthread_mutex_unlock(&r->mu);
	if (!any) {
		free(pod);
		return false;
	}
	/* The caller's process and its ancestors, read outside the lock. */
	pid_t chain[ANCESTORS];
	int n = 0;
	for (pid_t p = status_field(pid, "Tgid"); p > 1 && n < ANCESTORS;
	     p = status_field(p, "PPid"))
		chain[n++] = p;
	bool found = false;
	pthread_mutex_lock(&r->mu);
	for (int i = 0; i < n && !found; i++) {
		int s = recent_slot(r, pod, now, chain[i]);
		if (s >= 0) {
			free(r->v[s].name);
			r->v[s].name = NULL;
			found = true;
		}
	}
	pthread_mutex_unlock(&r->mu);
	if (found)
		*name = pod;
	else
		free(pod);
	return found;
}

void intent_recent_clear(struct intent_recent *r)
{
	pthread_mutex_lock(&r->mu);
	for (size_t i = 0; i < INTENT_RECENT; i++) {
		free(r->v[i].name);
		r->v[i].name = NULL;
	}
	pthread_mutex_unlock(&r->mu);
}

/* --- crawlers ---------------------------------------------------------- */

/* Programs that walk a tree and read what they find (DESIGN.md "Jobs": a
 * crawl never waits on a job): copy, archive and sync tools, file
 * managers, and these. grep only with a recursive option. */
static const char *const walkers[] = {
    "find",	      "xargs", "du",   "rg",	 "ag",	     "ack",
    "tree",	      "zip",   "ncdu", "locate", "updatedb", "baloo_file",
    "tracker-miner-f"};
/* A process these run is part of their walk (`find -exec cat {} +`). */
static const char *const spawners[] = {"find", "xargs"};

static bool in_list(const char *name, const char *const *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(name, v[i]))
			return true;
	return false;
}

/* grep -r, -R, -rn, --recursive, --dereference-recursive, -d recurse,
 * --directories=recurse. */
static bool grep_recursive(const struct intent_caller *c)
{
	const char *a = c->cmdline, *end = c->cmdline + c->cmdline_len;
	bool first = true;
	for (; a < end; a += strlen(a) + 1) {
		if (first) { /* argv[0] */
			first = false;
			continue;
		}
		if (!strcmp(a, "--"))
			break;
		if (!strcmp(a, "--recursive") ||
		    !strcmp(a, "--dereference-recursive") ||
		    !strcmp(a, "--directories=recurse"))
			return true;
		if (!strcmp(a, "-d") && a + strlen(a) + 1 < end &&
		    !strcmp(a + strlen(a) + 1, "recurse"))
			return true;
		if (a[0] != '-' || a[1] == '-')
			continue;
		for (const char *p = a + 1; *p; p++) {
			if (*p == 'r' || *p == 'R')
				return true;
			if (strchr("efmABCdD", *p)) /* the rest is its value */
				break;
		}
	}
	return false;
}

static const char *base_of(const char *s)
{
	const char *b = strrchr(s, '/');
	return b ? b + 1 : s;
}

static bool crawls(const struct intent_caller *c)
{
	const char *names[2] = {c->comm, base_of(c->cmdline)};
	for (int i = 0; i < 2; i++) {
		const char *n = names[i];
		if (tool_of(n) == T_COPY && strcmp(n, "sshd") &&
		    strcmp(n, "curl") && strcmp(n, "wget"))
			return true;
		if (in_list(n, walkers, sizeof walkers / sizeof *walkers))
			return true;
		if ((!strcmp(n, "grep") || !strcmp(n, "egrep") ||
		     !strcmp(n, "fgrep")) &&
		    grep_recursive(c))
			return true;
	}
	return false;
}

bool intent_crawler(pid_t pid)
{
	struct intent_caller c;
	bool crawl = false;
	if (intent_caller_read(pid, &c) == 0 || c.comm) {
		crawl = c.cmdline && crawls(&c);
		pid_t ppid = status_field(c.tgid, "PPid");
		char path[64];
		size_t len;
		snprintf(path, sizeof path, "/proc/%d/comm", (int)ppid);
		char *pc =
		    !crawl && ppid > 0 ? read_small(path, 64, &len) : NULL;
		if (pc && len && pc[len - 1] == '\n')
			pc[len - 1] = '\0';
		if (pc &&
		    in_list(pc, spawners, sizeof spawners / sizeof *spawners))
			crawl = true;
		free(pc);
	}
	intent_caller_free(&c);
	return crawl;
}
