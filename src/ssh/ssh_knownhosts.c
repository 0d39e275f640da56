/* ssh_knownhosts.c — host keys, per pod: each is recorded in known_hosts
 * under the pod's id (as ssh's HostKeyAlias does), learned on first use,
 * refused on change; and primefs's own lines of pods that are gone are
 * pruned. Runs on a session's I/O thread, except pruning (the pool's
 * caller). The file itself is never followed if it is a link (it may be
 * in the state directory, statedir.h); it is replaced whole with
 * atomic_write_file. */
#include "ssh_int.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

/* The comment of the known_hosts lines primefs writes: the only lines
 * ssh_pool_prune may remove. */
#define KH_COMMENT "primefs"

static const char b64chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Unpadded, as OpenSSH prints fingerprints. */
static void b64_encode(struct buf *out, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)p[i] << 16;
		if (i + 1 < n)
			v |= (unsigned)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		buf_addc(out, b64chars[(v >> 18) & 63]);
		buf_addc(out, b64chars[(v >> 12) & 63]);
		if (i + 1 < n)
			buf_addc(out, b64chars[(v >> 6) & 63]);
		if (i + 2 < n)
			buf_addc(out, b64chars[v & 63]);
	}
}
static const struct {
	int hostkey;   /* LIBSSH2_HOSTKEY_TYPE_* */
	int knownhost; /* LIBSSH2_KNOWNHOST_KEY_* */
	const char *alg, *name;
} key_types[] = {
    {LIBSSH2_HOSTKEY_TYPE_ED25519, LIBSSH2_KNOWNHOST_KEY_ED25519, "ssh-ed25519",
     "ED25519"},
    {LIBSSH2_HOSTKEY_TYPE_ECDSA_256, LIBSSH2_KNOWNHOST_KEY_ECDSA_256,
     "ecdsa-sha2-nistp256", "ECDSA-256"},
    {LIBSSH2_HOSTKEY_TYPE_ECDSA_384, LIBSSH2_KNOWNHOST_KEY_ECDSA_384,
     "ecdsa-sha2-nistp384", "ECDSA-384"},
    {LIBSSH2_HOSTKEY_TYPE_ECDSA_521, LIBSSH2_KNOWNHOST_KEY_ECDSA_521,
     "ecdsa-sha2-nistp521", "ECDSA-521"},
    {LIBSSH2_HOSTKEY_TYPE_RSA, LIBSSH2_KNOWNHOST_KEY_SSHRSA, "ssh-rsa", "RSA"},
    {LIBSSH2_HOSTKEY_TYPE_DSS, LIBSSH2_KNOWNHOST_KEY_SSHDSS, "ssh-dss", "DSA"},
};
#define N_KEY_TYPES (sizeof key_types / sizeof key_types[0])

/* A pod's host key is recorded under its id, as ssh's HostKeyAlias does:
 * addresses are recycled, ids are not. An id fit to be a known_hosts name
 * (no pattern, list, hash or marker characters). */
bool kh_name_ok(const char *name)
{
	if (!*name || strlen(name) > 255 || *name == '|' || *name == '@' ||
	    *name == '#' || *name == '[')
		return false;
	for (const char *q = name; *q; q++)
		if (!(isalnum((unsigned char)*q) || strchr("._-", *q)))
			return false;
	return true;
}

/* Reads the file line by line rather than with
 * libssh2_knownhost_readfile(): that one stops at the first line it cannot
 * parse (a certificate authority, a key type libssh2 1.10 lacks), which
 * would silently forget every later host — and a forgotten host would be
 * learned again instead of checked. Missing file: an empty set. */
/* known_hosts opened for reading, not followed if a link: NULL with
 * errno set (ENOENT: none yet). */
static FILE *kh_fopen(const char *path)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
	if (!f && fd >= 0) {
		int e = errno;
		close(fd);
		errno = e;
	}
	return f;
}

LIBSSH2_KNOWNHOSTS *kh_load(struct sess *s)
{
	const char *path = s->pool->known_hosts;
	LIBSSH2_KNOWNHOSTS *k = libssh2_knownhost_init(s->ss);
	if (!k) {
		plog("ssh", s->key, "libssh2_knownhost_init failed");
		return NULL;
	}
	FILE *f = kh_fopen(path);
	if (!f) {
		if (errno == ENOENT)
			return k;
		plog("ssh", s->key, "cannot read known_hosts %s: %s", path,
		     strerror(errno));
		libssh2_knownhost_free(k);
		return NULL;
	}
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	int skipped = 0;
	while ((len = getline(&line, &cap, f)) > 0)
		if (libssh2_knownhost_readline(k, line, (size_t)len,
					       LIBSSH2_KNOWNHOST_FILE_OPENSSH))
			skipped++;
	free(line);
	fclose(f);
	(void)skipped; /* such lines cannot name a key libssh2 could use */
	return k;
}

/* Port -1: the exact name, as ssh looks up a HostKeyAlias. */
static int kh_check(LIBSSH2_KNOWNHOSTS *k, const char *name, const char *key,
		    size_t len, int knownhost_type)
{
	return libssh2_knownhost_checkp(k, name, -1, key, len,
					LIBSSH2_KNOWNHOST_TYPE_PLAIN |
					    LIBSSH2_KNOWNHOST_KEYENC_RAW |
					    knownhost_type,
					NULL);
}

/* Before the handshake: which key types are known for this host (a check
 * with a key no entry can hold reports a mismatch exactly when an entry of
 * that type exists), and asks the server for those first — as OpenSSH
 * does —, so that a host known by its ed25519 key is not offered a
 * different type that would look like a change. */
void kh_prefer_known(struct sess *s, LIBSSH2_KNOWNHOSTS *k)
{
	struct buf pref;
	buf_init(&pref);
	s->known_types = 0;
	for (size_t i = 0; i < N_KEY_TYPES; i++)
		if (kh_check(k, s->key, "\n", 1, key_types[i].knownhost) ==
		    LIBSSH2_KNOWNHOST_CHECK_MISMATCH) {
			s->known_types |= 1 << i;
			buf_printf(&pref, "%s%s", pref.len ? "," : "",
				   key_types[i].alg);
		}
	for (size_t i = 0; i < N_KEY_TYPES; i++)
		if (!(s->known_types & (1 << i)))
			buf_printf(&pref, "%s%s", pref.len ? "," : "",
				   key_types[i].alg);
	/* Names this libssh2 lacks are dropped by it; an error here only
	 * means its default order stays. */
	libssh2_session_method_pref(s->ss, LIBSSH2_METHOD_HOSTKEY, pref.data);
	buf_free(&pref);
}

/* The directory known_hosts is in (made 0700 if missing; links on the
 * way to it are the user's own), open, and the file's name in it. */
static int kh_dir(const char *path, const char **name)
{
	const char *slash = strrchr(path, '/');
	*name = slash ? slash + 1 : path;
	if (!slash)
		return mkdir_p(AT_FDCWD, ".", true);
	char *d = xstrndup(path, (size_t)(slash - path));
	int fd = mkdir_p(AT_FDCWD, *d ? d : "/", true);
	free(d);
	return fd;
}

static int kh_learn(struct sess *s, LIBSSH2_KNOWNHOSTS *k, const char *key,
		    size_t len, int kt, const char *fp)
{
	struct ssh_pool *p = s->pool;
	const char *path = p->known_hosts;
	const char *name = s->key;
	struct libssh2_knownhost *entry = NULL;
	char line[8192];
	size_t outlen = 0;
	if (libssh2_knownhost_addc(
		k, name, NULL, key, len, KH_COMMENT, sizeof KH_COMMENT - 1,
		LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW |
		    key_types[kt].knownhost,
		&entry) ||
	    libssh2_knownhost_writeline(k, entry, line, sizeof line - 1,
					&outlen,
					LIBSSH2_KNOWNHOST_FILE_OPENSSH)) {
		plog("ssh", s->key, "cannot record the host key of %s: %s",
		     name, sess_last_error(s));
		return -EIO;
	}
	if (!outlen || line[outlen - 1] != '\n')
		line[outlen++] = '\n';
	/* Appended in one write, so that other lines (and other sessions
	 * learning at the same time) are left as they are; the lock keeps
	 * ssh_pool_prune from rewriting the file meanwhile. */
	pthread_mutex_lock(&p->kh_lock);
	const char *base;
	int dfd = kh_dir(path, &base);
	int fd = dfd < 0 ? dfd
			 : openat_nofollow(dfd, base,
					   O_WRONLY | O_APPEND | O_CREAT, 0600);
	int err = fd < 0				       ? -fd
		  : write(fd, line, outlen) != (ssize_t)outlen ? errno
							       : 0;
	if (fd >= 0)
		close(fd);
	if (dfd >= 0)
		close(dfd);
	pthread_mutex_unlock(&p->kh_lock);
	if (err) {
		plog("ssh", s->key, "cannot write known_hosts %s: %s", path,
		     strerror(err ? err : EIO));
		return -EIO;
	}
	plog("ssh", s->key,
	     "learned host key of pod %s at %s port %d (%s SHA256:%s) into %s",
	     name, s->host, s->port, key_types[kt].name, fp, path);
	return 0;
}

/* After the handshake, before anything else is sent. */
int kh_check_host_key(struct sess *s, LIBSSH2_KNOWNHOSTS *k)
{
	size_t len = 0;
	int type = 0;
	const char *key = libssh2_session_hostkey(s->ss, &len, &type);
	size_t kt = 0;
	while (kt < N_KEY_TYPES && key_types[kt].hostkey != type)
		kt++;
	if (!key || kt == N_KEY_TYPES) {
		plog("ssh", s->key,
		     "%s port %d sent a host key of unknown type", s->host,
		     s->port);
		return -EIO;
	}
	struct buf fp;
	buf_init(&fp);
	const char *h =
	    libssh2_hostkey_hash(s->ss, LIBSSH2_HOSTKEY_HASH_SHA256);
	if (h)
		b64_encode(&fp, (const unsigned char *)h, 32);
	else
		buf_adds(&fp, "?");
	int r = kh_check(k, s->key, key, len, key_types[kt].knownhost);
	int rc = 0;
	if (r == LIBSSH2_KNOWNHOST_CHECK_MATCH) {
		rc = 0;
	} else if (r == LIBSSH2_KNOWNHOST_CHECK_MISMATCH) {
		plog("ssh", s->key,
		     "HOST KEY CHANGED for pod %s (%s port %d): it now "
		     "presents %s key SHA256:%s, which does not match the one "
		     "in %s; refusing to connect (nothing was sent). If the "
		     "pod was really rebuilt, remove its line from that file",
		     s->key, s->host, s->port, key_types[kt].name, fp.data,
		     s->pool->known_hosts);
		rc = -EACCES;
	} else if (r == LIBSSH2_KNOWNHOST_CHECK_NOTFOUND && s->known_types) {
		/* Known by keys of other types only, which this server no
		 * longer offers (they were asked for first): as suspect as a
		 * changed key, but maybe only a key type libssh2 cannot use. */
		struct buf types;
		buf_init(&types);
		for (size_t i = 0; i < N_KEY_TYPES; i++)
			if (s->known_types & (1 << i))
				buf_printf(&types, "%s%s", types.len ? "/" : "",
					   key_types[i].name);
		plog("ssh", s->key,
		     "HOST KEY CHANGED for pod %s (%s port %d): it presents "
		     "%s key SHA256:%s, but %s knows it by %s keys only; "
		     "refusing to connect (nothing was sent). If this key is "
		     "right, add it to that file under the pod's id "
		     "(ssh-keyscan -p %d %s, first word replaced by %s)",
		     s->key, s->host, s->port, key_types[kt].name, fp.data,
		     s->pool->known_hosts, types.data, s->port, s->host,
		     s->key);
		buf_free(&types);
		rc = -EACCES;
	} else if (r == LIBSSH2_KNOWNHOST_CHECK_NOTFOUND) {
		rc = kh_learn(s, k, key, len, (int)kt, fp.data);
	} else {
		plog("ssh", s->key, "known_hosts check of pod %s failed: %s",
		     s->key, sess_last_error(s));
		rc = -EIO;
	}
	buf_free(&fp);
	return rc;
}
/* Of a known_hosts line: true when primefs wrote it (its comment) for a
 * pod that is not listed; its name goes to name. Anything else is kept:
 * comments, markers, lines of the user's or of ssh's. */
static bool kh_line_gone(const char *line, bool (*listed)(void *, const char *),
			 void *arg, char *name, size_t namelen)
{
	const char *f[4];
	size_t len[4] = {0, 0, 0, 0};
	const char *q = line;
	for (int i = 0; i < 4; i++) {
		while (*q == ' ' || *q == '\t')
			q++;
		f[i] = q;
		if (i == 3) {
			len[i] = strcspn(q, "\r\n");
			while (len[i] &&
			       (q[len[i] - 1] == ' ' || q[len[i] - 1] == '\t'))
				len[i]--;
			break;
		}
		len[i] = strcspn(q, " \t\r\n");
		q += len[i];
	}
	if (!len[0] || *f[0] == '#' || *f[0] == '@' || !len[2] ||
	    len[3] != sizeof KH_COMMENT - 1 ||
	    memcmp(f[3], KH_COMMENT, len[3]) || len[0] >= namelen)
		return false;
	memcpy(name, f[0], len[0]);
	name[len[0]] = '\0';
	return !kh_name_ok(name) || !listed(arg, name);
}

/* Rewrites known_hosts without primefs's lines of pods not listed: into a
 * new file renamed over it, so that a reader sees the old or the new. */
void kh_prune(struct ssh_pool *p, bool (*listed)(void *, const char *),
	      void *arg)
{
	if (!p->known_hosts)
		return;
	struct buf keep, gone;
	buf_init(&keep);
	buf_init(&gone);
	int removed = 0;
	char err[200] = "";
	pthread_mutex_lock(&p->kh_lock);
	FILE *f = kh_fopen(p->known_hosts);
	if (f) {
		char *line = NULL, name[256];
		size_t cap = 0;
		while (getline(&line, &cap, f) > 0) {
			if (kh_line_gone(line, listed, arg, name,
					 sizeof name)) {
				removed++;
				if (gone.len < 400)
					buf_printf(&gone, "%s%s",
						   gone.len ? ", " : "", name);
				continue;
			}
			buf_adds(&keep, line);
		}
		free(line);
		fclose(f);
	}
	if (removed) {
		const char *base;
		int dfd = kh_dir(p->known_hosts, &base);
		int rc =
		    dfd < 0 ? dfd
			    : atomic_write_file(dfd, base, keep.data, keep.len);
		if (rc)
			snprintf(err, sizeof err, "%s", strerror(-rc));
		if (dfd >= 0)
			close(dfd);
	}
	pthread_mutex_unlock(&p->kh_lock);
	if (removed && err[0])
		plog("ssh", "known_hosts", "cannot rewrite %s: %s",
		     p->known_hosts, err);
	else if (removed)
		plog("ssh", "known_hosts",
		     "removed %d host key%s of pods that are gone (%s%s) "
		     "from %s",
		     removed, removed == 1 ? "" : "s", gone.data,
		     gone.len >= 400 ? ", ..." : "", p->known_hosts);
	buf_free(&keep);
	buf_free(&gone);
}
