/* keyfiles.c — see keyfiles.h. Drafts are few and short-lived; their
 * memory stays until tree_free (a node may point at one after it is
 * done), a few bytes per `cp` or `ln`. */
#include "tree_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "keyfiles.h"
#include "lifecycle.h"
#include "log.h"
#include "sshkeys.h"

struct draft {
	char *name;
	char *link; /* a symlink's target; NULL: a key being written */
	bool done;
	struct draft *next;
};

static pthread_mutex_t drafts_mu = PTHREAD_MUTEX_INITIALIZER;
static struct draft *drafts;

static struct draft *draft_find(const char *name)
{
	for (struct draft *d = drafts; d; d = d->next)
		if (!d->done && !strcmp(d->name, name))
			return d;
	return NULL;
}

static struct draft *draft_add(const char *name, const char *link)
{
	struct draft *d = xcalloc(1, sizeof *d);
	d->name = xstrdup(name);
	d->link = link ? xstrdup(link) : NULL;
	pthread_mutex_lock(&drafts_mu);
	d->next = drafts;
	drafts = d;
	pthread_mutex_unlock(&drafts_mu);
	return d;
}

static void draft_done(const char *name)
{
	pthread_mutex_lock(&drafts_mu);
	struct draft *d = draft_find(name);
	if (d)
		d->done = true;
	pthread_mutex_unlock(&drafts_mu);
}

static struct api *keys_api(struct tree *t)
{
	return t->o.life ? t->o.life->api : NULL;
}

/* A change of ours: the next look fetches, and the kernel forgets. */
static void changed_here(struct tree *t)
{
	cache_stale(t->o.cache, SNAP_KEYS);
	keys_changed(t);
}

void keys_changed(struct tree *t)
{
	tell(t, "/ssh_keys", false);
	tell(t, "/ssh_keys/primary", true);
}

static TREE_RENDER(r_key)
{
	(void)t;
	const struct ssh_key *k = obj;
	buf_printf(out, "%s\n", k->public_key);
	return 0;
}

const struct file_def key_file = {
    .name = "", .render = r_key, .flags = F_OWNER};

int keys_step(struct tree *t, struct node *n, const char *name)
{
	(void)t;
	pthread_mutex_lock(&drafts_mu);
	struct draft *d = draft_find(name);
	pthread_mutex_unlock(&drafts_mu);
	if (d) {
		n->type = d->link ? N_LINK : N_FILE;
		n->file = d->link ? NULL : &newkey_file;
		n->obj = d;
		n->pod_id = NULL;
		return 0;
	}
	const struct ssh_key *k = !strcmp(name, "primary")
				      ? snap_key_primary(n->snap)
				      : snap_key(n->snap, name);
	if (!k)
		return -ENOENT;
	n->obj = k;
	if (!strcmp(name, "primary")) {
		n->type = N_LINK;
		n->file = &key_file; /* keys_readlink: a key, not a draft */
		return 0;
	}
	n->type = N_FILE;
	n->file = &key_file;
	return 0;
}

int keys_list(const struct snap *s, add_fn add, void *ctx)
{
	if (snap_key_primary(s) && add(ctx, "primary"))
		return 0;
	for (size_t i = 0; i < s->keys.n; i++)
		if (s->keys.v[i].dir && add(ctx, s->keys.v[i].dir))
			break;
	return 0;
}

int keys_readlink(const struct node *n, struct buf *out)
{
	if (n->file == &key_file) { /* primary */
		buf_adds(out, ((const struct ssh_key *)n->obj)->dir);
		return 0;
	}
	buf_adds(out, ((const struct draft *)n->obj)->link);
	return 0;
}

/* ---- a new key file: written, registered at close ---- */

struct newkey {
	struct buf data;
	char *name;
	bool posted;
};

static int nk_open(struct tree_handle *h, const struct node *n)
{
	(void)n;
	struct newkey *k = xcalloc(1, sizeof *k);
	buf_init(&k->data);
	const char *slash = strrchr(h->path, '/');
	k->name = xstrdup(slash ? slash + 1 : h->path);
	h->priv = k;
	return 0;
}

static int nk_write(struct tree_handle *h, const char *data, size_t size,
		    off_t off)
{
	struct newkey *k = h->priv;
	if (off < 0 || (size_t)off + size > 64 * 1024)
		return -EFBIG;
	while (k->data.len < (size_t)off)
		buf_addc(&k->data, '\0');
	if ((size_t)off + size > k->data.len) {
		buf_reserve(&k->data, (size_t)off + size - k->data.len);
		k->data.len = (size_t)off + size;
		k->data.data[k->data.len] = '\0';
	}
	memcpy(k->data.data + off, data, size);
	/* A whole line is judged at once: shells ignore close's error. */
	const char *why = k->data.data[k->data.len - 1] == '\n'
			      ? pubkey_problem(k->data.data, k->data.len)
			      : NULL;
	if (why && !k->posted) {
		k->posted = true; /* refused: nothing is sent */
		plog("write", h->path, "no key registered: %s", why);
	}
	return why ? -EINVAL : (int)size;
}

static int nk_post(struct tree_handle *h)
{
	struct newkey *k = h->priv;
	if (k->posted || !k->data.len)
		return 0;
	k->posted = true;
	const char *why = pubkey_problem(k->data.data, k->data.len);
	if (why) {
		plog("write", h->path, "no key registered: %s", why);
		return -EINVAL;
	}
	size_t len = k->data.len;
	while (len &&
	       (k->data.data[len - 1] == '\n' || k->data.data[len - 1] == '\r'))
		len--;
	char *text = xstrndup(k->data.data, len);
	struct api *a = keys_api(h->tree);
	int rc = a ? api_add_key(a, k->name, text, "write", h->path) : -EPERM;
	free(text);
	if (rc == 0) {
		plog("write", h->path, "registered SSH key %s", k->name);
		changed_here(h->tree);
	}
	return rc;
}

static void nk_release(struct tree_handle *h)
{
	struct newkey *k = h->priv;
	nk_post(h);
	draft_done(k->name);
	buf_free(&k->data);
	free(k->name);
	free(k);
}

/* A close posts what was written (once: nk_post empties the draft). */
static int nk_flush(struct tree_handle *h, pid_t closer)
{
	(void)closer;
	return nk_post(h);
}

static const struct file_hooks newkey_hooks = {
    .open = nk_open,
    .write = nk_write,
    .flush = nk_flush,
    .release = nk_release,
};

const struct file_def newkey_file = {
    .name = "", .flags = F_OWNER, .hooks = &newkey_hooks};

/* ---- what the FUSE layer calls ---- */

static const char keys_prefix[] = "/ssh_keys/";

/* The name under ssh_keys/, or NULL when path is not directly in it. */
static const char *key_name(const char *path)
{
	if (strncmp(path, keys_prefix, sizeof keys_prefix - 1))
		return NULL;
	const char *name = path + sizeof keys_prefix - 1;
	return *name && !strchr(name, '/') ? name : NULL;
}

int tree_key_create(struct tree *t, const char *path)
{
	(void)t;
	const char *name = key_name(path);
	if (!name)
		return -EACCES;
	if (!safe_name(name) || name[0] == '.' || !strcmp(name, "primary")) {
		plog("create", path,
		     "refused: key names are [A-Za-z0-9._-] only, not "
		     "starting with '.', and not 'primary'");
		return -EINVAL;
	}
	pthread_mutex_lock(&drafts_mu);
	bool busy = draft_find(name) != NULL;
	pthread_mutex_unlock(&drafts_mu);
	if (busy)
		return -EEXIST;
	draft_add(name, NULL);
	return 0;
}

/* The key a link target names (`laptop`, `./laptop`, or a path ending in
 * ssh_keys/laptop), from a fresh listing. */
static int target_key(struct tree *t, const char *target, const char *path,
		      struct snap **s, const struct ssh_key **k)
{
	const char *slash = strrchr(target, '/');
	const char *name = slash ? slash + 1 : target;
	int rc = cache_get(t->o.cache, SNAP_KEYS, CACHE_TTL, s);
	if (rc)
		return rc;
	*k = snap_key(*s, name);
	if (!*k) {
		plog("symlink", path, "no key %s in ssh_keys/", name);
		snap_put(*s);
		*s = NULL;
		return -ENOENT;
	}
	return 0;
}

static int make_primary(struct tree *t, const char *target, const char *path)
{
	struct snap *s;
	const struct ssh_key *k;
	int rc = target_key(t, target, path, &s, &k);
	if (rc)
		return rc;
	struct api *a = keys_api(t);
	rc = k->primary ? 0
	     : a	? api_primary_key(a, k->id, "symlink", path)
			: -EPERM;
	if (rc == 0) {
		plog("symlink", path, "SSH key %s is now the primary key",
		     k->dir);
		changed_here(t);
	}
	snap_put(s);
	return rc;
}

int tree_symlink(struct tree *t, const char *target, const char *path)
{
	const char *name = key_name(path);
	if (!name)
		return -EPERM;
	if (!strcmp(name, "primary"))
		return make_primary(t, target, path);
	struct node n;
	int rc = tree_resolve(t, path, &n);
	if (rc == 0) {
		node_release(&n);
		return -EEXIST;
	}
	if (!safe_name(name) || name[0] == '.')
		return -EINVAL;
	draft_add(name, target); /* ln -sfn's temporary name */
	return 0;
}

int tree_rename(struct tree *t, const char *from, const char *to)
{
	const char *a = key_name(from), *b = key_name(to);
	if (!a || !b)
		return -EPERM;
	pthread_mutex_lock(&drafts_mu);
	struct draft *d = draft_find(a);
	char *target = d && d->link ? xstrdup(d->link) : NULL;
	pthread_mutex_unlock(&drafts_mu);
	if (!target || strcmp(b, "primary")) {
		free(target);
		plog("rename", from,
		     "refused: only a link renamed over ssh_keys/primary "
		     "(ln -sfn KEY ssh_keys/primary) changes anything here");
		return -EPERM;
	}
	int rc = make_primary(t, target, to);
	if (rc == 0)
		draft_done(a);
	free(target);
	return rc;
}

int tree_unlink(struct tree *t, const char *path)
{
	const char *name = key_name(path);
	if (!name || !strcmp(name, "primary"))
		return -EPERM;
	pthread_mutex_lock(&drafts_mu);
	struct draft *d = draft_find(name);
	if (d && d->link)
		d->done = true; /* a link that was never renamed */
	pthread_mutex_unlock(&drafts_mu);
	if (d)
		return d->link ? 0 : -EBUSY;
	struct snap *s;
	int rc = cache_get(t->o.cache, SNAP_KEYS, CACHE_TTL, &s);
	if (rc)
		return rc;
	const struct ssh_key *k = snap_key(s, name);
	struct api *a = keys_api(t);
	rc = !k	 ? -ENOENT
	     : a ? api_delete_key(a, k->id, "unlink", path)
		 : -EPERM;
	if (rc == 0) {
		plog("unlink", path, "deleted SSH key %s", name);
		changed_here(t);
	}
	snap_put(s);
	return rc;
}

void keys_free(void)
{
	pthread_mutex_lock(&drafts_mu);
	while (drafts) {
		struct draft *d = drafts;
		drafts = d->next;
		free(d->name);
		free(d->link);
		free(d);
	}
	pthread_mutex_unlock(&drafts_mu);
}
