/* collect_copy.c — collect_run (collect.h): what a pod's list names,
 * brought back over SFTP before the pod goes. The home is the SFTP
 * server's "." (realpath); each entry's components are walked from there,
 * a component with glob characters matched (fnmatch, FNM_PERIOD) against
 * its directory's names; what an entry names is copied whole (a directory
 * with everything under it), followed if it is a symlink; under it,
 * symlinks, devices and the like are left, and said so. A file is written to
 * files/.tmp and renamed into files/<id>/ only when whole and within
 * collect_max, so no partial file is kept. The time limit is the thread's SFTP
 * interruption check (sftp.h): every wait ends when it passes. A
 * connection-level error ends the run at once: a pod that cannot be reached is
 * not waited for. No lock is held while the pod is talked to. */
#include "collect_int.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache.h"
#include "log.h"
#include "model.h"
#include "sftp.h"

#define CHUNK ((size_t)256 << 10)

struct run {
	struct collect *c;
	struct sftp *f;
	bool lent; /* f is o.sftp_get's, given back by o.sftp_put */
	const char *id;
	struct buf logpath; /* /history/<name>/files, for `log` */
	double deadline;
	unsigned long long used;
	int out_fd; /* files/<id>/ */
	int stop;   /* 0, or why the run ended: -EINTR (time), else lost */
	size_t n_files;
};

static bool past_deadline(void *arg)
{
	struct run *r = arg;
	return now_monotonic() >= r->deadline || atomic_load(&r->c->stopping);
}

/* Why a wait was cut short. */
static const char *why_intr(struct collect *c)
{
	return atomic_load(&c->stopping) ? "primefs is stopping"
					 : "collect_timeout passed";
}

/* Errors that say the pod cannot be talked to any more. */
static bool lost(int rc)
{
	return rc == -ENOTCONN || rc == -EHOSTUNREACH || rc == -ECONNRESET ||
	       rc == -ECONNREFUSED || rc == -ETIMEDOUT || rc == -EIO ||
	       rc == -EINTR;
}

static void left(struct run *r, const char *rel, const char *why)
{
	plog("collect", r->logpath.data, "%s was not brought back: %s", rel,
	     why);
}

/* A failure on rel: logged; a lost pod or the time limit ends the run. */
static void failed(struct run *r, const char *rel, int rc)
{
	if (rc == -EINTR)
		left(r, rel, why_intr(r->c));
	else
		left(r, rel, strerror(-rc));
	if (lost(rc))
		r->stop = rc;
}

/* A name the pod gave that may become a path component here. */
static bool name_ok(const char *s)
{
	if (!*s || !strcmp(s, ".") || !strcmp(s, "..") || strlen(s) > 255)
		return false;
	for (; *s; s++)
		if (*s == '/' || (unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

static void copy_file(struct run *r, const char *rpath, const char *rel,
		      const struct sftp_attr *a)
{
	unsigned long long max = r->c->o.max;
	if (r->used + a->size > max) {
		struct buf why;
		buf_init(&why);
		buf_printf(&why,
			   "collect_max (%.0f MiB) reached (%llu bytes, %llu "
			   "brought back already)",
			   (double)max / 1048576, (unsigned long long)a->size,
			   r->used);
		left(r, rel, why.data);
		buf_free(&why);
		return;
	}
	struct sftp_file *h;
	int rc = sftp_open(r->f, rpath, O_RDONLY, 0, &h);
	if (rc) {
		failed(r, rel, rc);
		return;
	}
	char *tmp = collect_tmp_name(r->c, r->id);
	int fd =
	    openat(r->c->tmp_fd, tmp,
		   O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = -errno;
		sftp_close(h);
		left(r, rel, strerror(-rc));
		free(tmp);
		return;
	}
	char *chunk = xmalloc(CHUNK);
	uint64_t off = 0;
	for (;;) {
		ssize_t n = sftp_read(h, chunk, CHUNK, off);
		if (n < 0) {
			rc = (int)n;
			break;
		}
		if (n == 0)
			break;
		if (r->used + off + (uint64_t)n > max) {
			rc = -EFBIG; /* it grew past the limit */
			break;
		}
		for (ssize_t done = 0; done < n;) {
			ssize_t w = write(fd, chunk + done, (size_t)(n - done));
			if (w < 0) {
				rc = -errno;
				break;
			}
			done += w;
		}
		if (rc)
			break;
		off += (uint64_t)n;
	}
	free(chunk);
	sftp_close(h);
	if (close(fd) && !rc)
		rc = -errno;
	/* Into place, in its directory under files/<id>/. */
	int dir_fd = -1;
	const char *base = strrchr(rel, '/');
	if (!rc) {
		if (base) {
			char *dir = xstrndup(rel, (size_t)(base - rel));
			dir_fd = mkdir_p(r->out_fd, dir, false);
			free(dir);
			base++;
		} else {
			dir_fd = dup(r->out_fd);
			if (dir_fd < 0)
				dir_fd = -errno;
			base = rel;
		}
		if (dir_fd < 0)
			rc = dir_fd;
	}
	if (!rc && renameat(r->c->tmp_fd, tmp, dir_fd, base))
		rc = -errno;
	if (dir_fd >= 0)
		close(dir_fd);
	if (rc) {
		unlinkat(r->c->tmp_fd, tmp, 0);
		if (rc == -EFBIG)
			left(r, rel, "collect_max reached (it grew meanwhile)");
		else
			failed(r, rel, rc);
	} else {
		r->used += off;
		r->n_files++;
	}
	free(tmp);
}

static void copy_any(struct run *r, const char *rpath, const char *rel,
		     const struct sftp_attr *a);

/* A directory: everything under it. */
static void copy_dir(struct run *r, const char *rpath, const char *rel)
{
	int fd = mkdir_p(r->out_fd, rel, false);
	if (fd < 0) {
		left(r, rel, strerror(-fd));
		return;
	}
	close(fd);
	struct sftp_file *d;
	int rc = sftp_opendir(r->f, rpath, &d);
	if (rc) {
		failed(r, rel, rc);
		return;
	}
	struct buf rp, lp;
	buf_init(&rp);
	buf_init(&lp);
	for (;;) {
		struct sftp_dirent *ents;
		size_t n;
		if ((rc = sftp_readdir(d, &ents, &n))) {
			failed(r, rel, rc);
			break;
		}
		if (!n)
			break;
		for (size_t i = 0; i < n && !r->stop; i++) {
			if (!strcmp(ents[i].name, ".") ||
			    !strcmp(ents[i].name, ".."))
				continue;
			buf_reset(&rp);
			buf_reset(&lp);
			buf_printf(&rp, "%s/%s", rpath, ents[i].name);
			buf_printf(&lp, "%s/%s", rel, ents[i].name);
			if (!name_ok(ents[i].name))
				left(r, lp.data, "a name unfit for a path");
			else
				copy_any(r, rp.data, lp.data, &ents[i].attr);
		}
		sftp_dirents_free(ents, n);
		if (r->stop)
			break;
	}
	sftp_close(d);
	buf_free(&rp);
	buf_free(&lp);
}

static void copy_any(struct run *r, const char *rpath, const char *rel,
		     const struct sftp_attr *a)
{
	if (r->stop)
		return;
	if (past_deadline(r)) {
		failed(r, rel, -EINTR);
		return;
	}
	mode_t t = (mode_t)a->mode & S_IFMT;
	if (!(a->flags & SFTP_ATTR_MODE))
		left(r, rel, "the pod did not say what it is");
	else if (S_ISDIR(t))
		copy_dir(r, rpath, rel);
	else if (S_ISREG(t))
		copy_file(r, rpath, rel, a);
	else
		left(r, rel, "not a regular file or directory");
}

/* Components comps[i..] of an entry, from the pod's directory rpath
 * (rel here). */
static void walk(struct run *r, const char *rpath, const char *rel,
		 char **comps, size_t i, size_t n, const char *entry)
{
	if (r->stop)
		return;
	const char *c = comps[i];
	struct buf rp, lp;
	buf_init(&rp);
	buf_init(&lp);
#define STEP(name)                                                             \
	do {                                                                   \
		buf_reset(&rp);                                                \
		buf_reset(&lp);                                                \
		buf_printf(&rp, "%s/%s", rpath, name);                         \
		buf_printf(&lp, "%s%s%s", rel, *rel ? "/" : "", name);         \
	} while (0)
	if (!strpbrk(c, "*?[")) {
		STEP(c);
		struct sftp_attr a;
		int rc = sftp_stat(r->f, rp.data, &a);
		if (rc == -ENOENT)
			left(r, entry, "no such file on the pod");
		else if (rc)
			failed(r, entry, rc);
		else if (i + 1 == n)
			copy_any(r, rp.data, lp.data, &a);
		else if (S_ISDIR((mode_t)a.mode & S_IFMT))
			walk(r, rp.data, lp.data, comps, i + 1, n, entry);
		else
			left(r, entry, "no such file on the pod");
		buf_free(&rp);
		buf_free(&lp);
		return;
	}
	struct sftp_file *d;
	int rc = sftp_opendir(r->f, rpath, &d);
	if (rc) {
		if (rc == -ENOENT || rc == -ENOTDIR)
			left(r, entry, "no such file on the pod");
		else
			failed(r, entry, rc);
		buf_free(&rp);
		buf_free(&lp);
		return;
	}
	size_t matched = 0;
	for (;;) {
		struct sftp_dirent *ents;
		size_t k;
		if ((rc = sftp_readdir(d, &ents, &k))) {
			failed(r, entry, rc);
			break;
		}
		if (!k)
			break;
		for (size_t j = 0; j < k && !r->stop; j++) {
			const char *nm = ents[j].name;
			if (!name_ok(nm) || fnmatch(c, nm, FNM_PERIOD))
				continue;
			matched++;
			STEP(nm);
			/* What an entry names is followed if a link; what
			 * is under it is not. */
			if (S_ISLNK((mode_t)ents[j].attr.mode & S_IFMT) &&
			    (rc = sftp_stat(r->f, rp.data, &ents[j].attr))) {
				failed(r, lp.data, rc);
				continue;
			}
			if (i + 1 == n)
				copy_any(r, rp.data, lp.data, &ents[j].attr);
			else if (S_ISDIR((mode_t)ents[j].attr.mode & S_IFMT))
				walk(r, rp.data, lp.data, comps, i + 1, n,
				     entry);
		}
		sftp_dirents_free(ents, k);
		if (r->stop)
			break;
	}
	sftp_close(d);
#undef STEP
	if (!matched && !r->stop)
		left(r, entry, "nothing on the pod matches it");
	buf_free(&rp);
	buf_free(&lp);
}

static void one_entry(struct run *r, const char *home, const char *entry)
{
	char *copy = xstrdup(entry), *save = NULL;
	char *comps[256];
	size_t n = 0;
	for (char *t = strtok_r(copy, "/", &save); t && n < 256;
	     t = strtok_r(NULL, "/", &save))
		comps[n++] = t;
	if (n)
		walk(r, home, "", comps, 0, n, entry);
	free(copy);
}

/* The pod's SSH connection if it may run anything, else NULL. */
static char *pod_conn(struct collect *c, const char *id, char *state, size_t n)
{
	struct snap *s;
	snprintf(state, n, "unknown");
	if (cache_get(c->o.cache, SNAP_PODS, CACHE_TTL, &s))
		return NULL;
	const struct pod *p = snap_pod(s, id);
	char *conn = NULL;
	if (p && pod_ready(p))
		conn = xstrdup(p->ssh.v[0]);
	else
		snprintf(state, n, "%s",
			 p && pod_status(p) ? pod_status(p) : "gone");
	snap_put(s);
	return conn;
}

void collect_run(struct collect *c, const char *id, const char *name)
{
	if (!c || c->files_fd < 0 || c->tmp_fd < 0 || !safe_name(id) ||
	    id[0] == '.')
		return;
	struct strlist l;
	collect_list(c, id, &l);
	if (!l.n || collect_mark_done(c, id)) {
		strlist_free(&l); /* empty: nothing is collected */
		return;
	}
	struct run r = {.c = c, .id = id, .out_fd = -1};
	buf_init(&r.logpath);
	buf_printf(&r.logpath, "/history/%s/files", name);
	size_t i = 0;
	char state[64];
	char *conn = NULL, *home = NULL;
	int rc = 0;
	if (atomic_load(&c->stopping)) {
		r.stop = -EINTR;
		goto out;
	}
	r.deadline = now_monotonic() + c->o.timeout;
	if (!(conn = pod_conn(c, id, state, sizeof state))) {
		plog("collect", r.logpath.data,
		     "pod %s is %s, not running: nothing is brought back", name,
		     state);
		i = l.n;
		r.stop = -ENOTCONN;
		goto out;
	}
	if ((r.out_fd = mkdir_p(c->files_fd, id, false)) < 0) {
		plog("collect", r.logpath.data,
		     "cannot keep files in the state directory: %s",
		     strerror(-r.out_fd));
		r.stop = r.out_fd;
		goto out;
	}
	r.f = c->o.sftp_get ? c->o.sftp_get(c->o.sftp_arg, id, conn) : NULL;
	r.lent = r.f != NULL;
	if (!r.f)
		r.f = sftp_new(c->o.pool, id, conn);
	sftp_set_interrupt(past_deadline, &r);
	if ((rc = sftp_realpath(r.f, ".", &home))) {
		plog("collect", r.logpath.data,
		     "pod %s cannot be reached (%s): nothing is brought back",
		     name, rc == -EINTR ? why_intr(c) : strerror(-rc));
		r.stop = rc;
		goto out;
	}
	plog("collect", r.logpath.data,
	     "bringing back what pod %s's collect "
	     "names",
	     name);
	for (; i < l.n && !r.stop; i++)
		one_entry(&r, home, l.v[i]);
out:
	/* What the run did not reach is named too. */
	for (; i < l.n; i++)
		left(&r, l.v[i],
		     r.stop == -EINTR ? why_intr(c)
				      : "the pod could not be reached");
	sftp_set_interrupt(NULL, NULL);
	if (r.f && r.lent)
		c->o.sftp_put(c->o.sftp_arg, r.f);
	else if (r.f)
		sftp_free(r.f);
	if (r.out_fd >= 0) {
		plog("collect", r.logpath.data,
		     "%zu file(s), %llu bytes brought back from pod %s",
		     r.n_files, r.used, name);
		close(r.out_fd);
	}
	free(home);
	free(conn);
	strlist_free(&l);
	buf_free(&r.logpath);
}
