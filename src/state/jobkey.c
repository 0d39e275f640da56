/* jobkey.c — see jobkey.h. */
#include "jobkey.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "ssh.h"
#include "sshkeys.h"

struct blobs {
	unsigned char *v[16];
	size_t len[16];
	size_t n;
};

static void add_blob(void *arg, const unsigned char *blob, size_t len)
{
	struct blobs *b = arg;
	if (b->n == sizeof b->v / sizeof *b->v || !len)
		return;
	b->v[b->n] = xmalloc(len);
	memcpy(b->v[b->n], blob, len);
	b->len[b->n++] = len;
}

/* The blob of <key_path>.pub, if there is one. */
static bool file_blob(const char *key_path, struct blobs *b)
{
	if (!key_path)
		return false;
	struct buf p;
	buf_init(&p);
	buf_printf(&p, "%s.pub", key_path);
	FILE *f = fopen(p.data, "re");
	buf_free(&p);
	if (!f)
		return false;
	char line[8192];
	bool ok = fgets(line, sizeof line, f) != NULL;
	fclose(f);
	unsigned char blob[PUBKEY_BLOB_MAX];
	size_t n = ok ? pubkey_blob(line, blob, sizeof blob) : 0;
	if (n)
		add_blob(b, blob, n);
	return n > 0;
}

static const struct ssh_key *match(const struct snap *s, const struct blobs *b)
{
	unsigned char blob[PUBKEY_BLOB_MAX];
	for (size_t j = 0; j < b->n; j++)
		for (size_t i = 0; s && i < s->keys.n; i++) {
			size_t n = pubkey_blob(s->keys.v[i].public_key, blob,
					       sizeof blob);
			if (n == b->len[j] && !memcmp(blob, b->v[j], n))
				return &s->keys.v[i];
		}
	return NULL;
}

/* A name for the key's file in ssh_keys/: the key file's own name. */
static void key_name(const char *key_path, struct buf *out)
{
	const char *base = key_path ? strrchr(key_path, '/') : NULL;
	base = base ? base + 1 : key_path;
	size_t from = out->len;
	if (base)
		sanitize_into(out, base);
	if (out->len == from || out->data[from] == '.')
		buf_adds(out, "mykey");
}

/* jobkey_id's work, with the keys from the cache c (fetched again once
 * when none matches), or from `given` alone. */
static int find_id(const struct jobkey *k, struct cache *c,
		   const struct snap *given, const char *path, char **id)
{
	*id = NULL;
	struct blobs b = {.n = 0};
	if (!k->key_explicit)
		ssh_agent_keys(add_blob, &b);
	bool has_file = file_blob(k->key_path, &b);
	/* A key file jobs would use, without its public half beside it. */
	bool bare =
	    k->key_explicit || (k->key_path && access(k->key_path, R_OK) == 0);
	if (!b.n) {
		if (bare)
			plog("mkdir", path,
			     "refused: no public key %s.pub beside the key "
			     "jobs use, so primefs cannot tell which of the "
			     "account's keys the pod needs (ssh-keygen -y -f "
			     "%s > %s.pub makes it; nothing was rented)",
			     k->key_path, k->key_path, k->key_path);
		else
			plog("mkdir", path,
			     "no SSH key for jobs (no ssh agent, no %s.pub): "
			     "the pod gets the account's primary key, and "
			     "jobs cannot reach it until -o ssh_key= names "
			     "that key",
			     k->key_path ? k->key_path : "key file");
		return bare ? -EACCES : 0;
	}
	struct snap *s = NULL;
	int rc = given ? 0 : cache_get(c, SNAP_KEYS, CACHE_TTL, &s);
	const struct ssh_key *m = rc ? NULL : match(given ? given : s, &b);
	if (!rc && !m && !given) { /* registered a moment ago elsewhere? */
		snap_put(s);
		s = NULL;
		rc = cache_get(c, SNAP_KEYS, CACHE_FRESH, &s);
		m = rc ? NULL : match(s, &b);
	}
	if (m) {
		*id = xstrdup(m->id);
	} else if (!rc) {
		struct buf how;
		buf_init(&how);
		if (has_file) {
			buf_printf(&how, "cp %s.pub %s/ssh_keys/", k->key_path,
				   k->mountpoint ? k->mountpoint : "<mnt>");
			key_name(k->key_path, &how);
		} else {
			buf_printf(&how,
				   "ssh-add -L | head -n 1 > %s/ssh_keys/"
				   "agentkey",
				   k->mountpoint ? k->mountpoint : "<mnt>");
		}
		plog("mkdir", path,
		     "refused: the SSH key primefs uses for jobs (%s) is not "
		     "one of the account's keys, so jobs could not reach the "
		     "pod; register it with: %s (nothing was rented)",
		     has_file && b.n == 1 ? k->key_path
		     : has_file ? "the ssh agent's keys and the key file"
				: "the ssh agent's keys",
		     how.data);
		buf_free(&how);
		rc = -EACCES;
	} else {
		plog("mkdir", path,
		     "the account's SSH keys could not be listed: %s (nothing "
		     "was rented)",
		     strerror(-rc));
	}
	if (s)
		snap_put(s);
	for (size_t i = 0; i < b.n; i++)
		free(b.v[i]);
	return rc;
}

int jobkey_id(const struct jobkey *k, struct cache *c, const char *path,
	      char **id)
{
	return find_id(k, c, NULL, path, id);
}

int jobkey_id_in(const struct jobkey *k, const struct snap *keys,
		 const char *path, char **id)
{
	return find_id(k, NULL, keys, path, id);
}
