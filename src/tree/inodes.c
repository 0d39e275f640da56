/* inodes.c — the inode table (inodes.h): a slot per number, pointing to an
 * entry allocated with its name inline; a hash of (parent, name) chained
 * through the entries. Per entry held: 8 bytes of slot, 4 of generation,
 * about 6 of hash bucket, and 16 + the name + 1 allocated (plus malloc's
 * own 8): about 42 bytes and the name. A freed slot keeps only its
 * generation (and 4 bytes on the free stack) until it is reused. */
#include "inodes.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ent {
	uint32_t parent; /* its slot; 0 for the root */
	uint32_t next;	 /* the next slot in its hash chain, or 0 */
	uint64_t refs;	 /* the kernel's nlookup + its child entries */
	char name[];
};

struct inodes {
	pthread_mutex_t mu;
	struct ent **slot; /* by number; NULL: free (slot 0 unused) */
	uint32_t *gen;	   /* by number: bumped at each reuse */
	uint32_t n_slots;  /* numbers handed out so far, + 1 */
	uint32_t cap;	   /* of slot and gen */
	uint32_t *free;	   /* freed numbers, to reuse */
	uint32_t n_free, free_cap;
	uint32_t *bucket;   /* the first slot of each chain, or 0 */
	uint32_t n_buckets; /* a power of 2 */
	size_t count;
};

static uint32_t hash(uint32_t parent, const char *name)
{
	uint32_t h = 2166136261u ^ parent;
	h *= 16777619u;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
		h ^= *p;
		h *= 16777619u;
	}
	return h;
}

struct inodes *inodes_new(void)
{
	struct inodes *t = xcalloc(1, sizeof *t);
	pthread_mutex_init(&t->mu, NULL);
	t->cap = 64;
	t->slot = xcalloc(t->cap, sizeof *t->slot);
	t->gen = xcalloc(t->cap, sizeof *t->gen);
	t->n_buckets = 64;
	t->bucket = xcalloc(t->n_buckets, sizeof *t->bucket);
	struct ent *root = xcalloc(1, sizeof *root + 1);
	root->refs = 1; /* never forgotten */
	t->slot[INODES_ROOT] = root;
	t->n_slots = INODES_ROOT + 1;
	t->count = 1;
	return t;
}

void inodes_free(struct inodes *t)
{
	if (!t)
		return;
	for (uint32_t i = 0; i < t->n_slots; i++)
		free(t->slot[i]);
	free(t->slot);
	free(t->gen);
	free(t->free);
	free(t->bucket);
	pthread_mutex_destroy(&t->mu);
	free(t);
}

static struct ent *get(struct inodes *t, uint64_t ino)
{
	return ino && ino < t->n_slots ? t->slot[ino] : NULL;
}

static uint32_t find(struct inodes *t, uint32_t parent, const char *name)
{
	uint32_t i = t->bucket[hash(parent, name) & (t->n_buckets - 1)];
	while (i) {
		struct ent *e = t->slot[i];
		if (e->parent == parent && !strcmp(e->name, name))
			return i;
		i = e->next;
	}
	return 0;
}

static void grow_buckets(struct inodes *t)
{
	uint32_t n = t->n_buckets * 2;
	uint32_t *b = xcalloc(n, sizeof *b);
	for (uint32_t i = 1; i < t->n_slots; i++) {
		struct ent *e = t->slot[i];
		if (!e || i == INODES_ROOT)
			continue;
		uint32_t h = hash(e->parent, e->name) & (n - 1);
		e->next = b[h];
		b[h] = i;
	}
	free(t->bucket);
	t->bucket = b;
	t->n_buckets = n;
}

static uint32_t new_slot(struct inodes *t)
{
	if (t->n_free) {
		uint32_t i = t->free[--t->n_free];
		t->gen[i]++;
		return i;
	}
	if (t->n_slots == UINT32_MAX)
		return 0;
	if (t->n_slots == t->cap) {
		uint32_t cap =
		    t->cap > UINT32_MAX / 2 ? UINT32_MAX : 2 * t->cap;
		t->slot = xrealloc(t->slot, cap * sizeof *t->slot);
		t->gen = xrealloc(t->gen, cap * sizeof *t->gen);
		memset(t->slot + t->cap, 0, (cap - t->cap) * sizeof *t->slot);
		memset(t->gen + t->cap, 0, (cap - t->cap) * sizeof *t->gen);
		t->cap = cap;
	}
	return t->n_slots++;
}

uint64_t inodes_ref(struct inodes *t, uint64_t parent, const char *name,
		    uint64_t *gen, bool *added)
{
	bool add = false;
	uint32_t i = 0;
	pthread_mutex_lock(&t->mu);
	struct ent *p = get(t, parent);
	if (p) {
		i = find(t, (uint32_t)parent, name);
		if (!i && (i = new_slot(t))) {
			size_t len = strlen(name);
			struct ent *e = xmalloc(sizeof *e + len + 1);
			memcpy(e->name, name, len + 1);
			e->parent = (uint32_t)parent;
			e->refs = 0;
			p->refs++;
			if (++t->count > t->n_buckets)
				grow_buckets(t);
			t->slot[i] = e;
			uint32_t h = hash(e->parent, name) & (t->n_buckets - 1);
			e->next = t->bucket[h];
			t->bucket[h] = i;
			add = true;
		}
		if (i)
			t->slot[i]->refs++;
	}
	if (gen)
		*gen = i ? t->gen[i] : 0;
	pthread_mutex_unlock(&t->mu);
	if (added)
		*added = add;
	return i;
}

/* Takes slot i out of its chain and frees it; its parent's count goes
 * down. Returns the parent when that reached zero too, else 0. */
static uint32_t drop(struct inodes *t, uint32_t i)
{
	struct ent *e = t->slot[i];
	uint32_t *at =
	    &t->bucket[hash(e->parent, e->name) & (t->n_buckets - 1)];
	while (*at != i)
		at = &t->slot[*at]->next;
	*at = e->next;
	uint32_t parent = e->parent;
	free(e);
	t->slot[i] = NULL;
	t->count--;
	if (t->n_free == t->free_cap) {
		t->free_cap = t->free_cap ? 2 * t->free_cap : 64;
		t->free = xrealloc(t->free, t->free_cap * sizeof *t->free);
	}
	t->free[t->n_free++] = i;
	struct ent *p = t->slot[parent];
	return --p->refs == 0 && parent != INODES_ROOT ? parent : 0;
}

size_t inodes_forget(struct inodes *t, uint64_t ino, uint64_t n)
{
	size_t freed = 0;
	pthread_mutex_lock(&t->mu);
	struct ent *e = get(t, ino);
	if (e && ino != INODES_ROOT) {
		e->refs = e->refs > n ? e->refs - n : 0;
		for (uint32_t i = e->refs ? 0 : (uint32_t)ino; i; freed++)
			i = drop(t, i);
	}
	pthread_mutex_unlock(&t->mu);
	return freed;
}

uint64_t inodes_find(struct inodes *t, uint64_t parent, const char *name)
{
	pthread_mutex_lock(&t->mu);
	uint32_t i = get(t, parent) ? find(t, (uint32_t)parent, name) : 0;
	pthread_mutex_unlock(&t->mu);
	return i;
}

uint64_t inodes_walk(struct inodes *t, const char *path, uint64_t *parent)
{
	char comp[256];
	uint32_t at = INODES_ROOT, up = 0;
	pthread_mutex_lock(&t->mu);
	for (const char *p = path; at && *p;) {
		p += strspn(p, "/");
		size_t len = strcspn(p, "/");
		if (!len)
			break;
		if (len >= sizeof comp) {
			at = 0;
			break;
		}
		memcpy(comp, p, len);
		comp[len] = '\0';
		up = at;
		at = find(t, at, comp);
		p += len;
	}
	pthread_mutex_unlock(&t->mu);
	if (parent)
		*parent = at ? up : 0;
	return at;
}

bool inodes_path(struct inodes *t, uint64_t ino, struct buf *out)
{
	const char *names[512];
	size_t depth = 0;
	bool ok = true;
	pthread_mutex_lock(&t->mu);
	struct ent *e = get(t, ino);
	if (!e) {
		ok = false;
	} else {
		for (uint64_t i = ino; i != INODES_ROOT && ok;) {
			e = t->slot[i];
			if (e->name[0] == '/') /* detached */
				ok = false;
			else if (depth == sizeof names / sizeof *names)
				ok = false;
			else
				names[depth++] = e->name;
			i = e->parent;
		}
	}
	if (ok) {
		if (!depth)
			buf_addc(out, '/');
		while (depth) {
			buf_addc(out, '/');
			buf_adds(out, names[--depth]);
		}
	}
	pthread_mutex_unlock(&t->mu);
	return ok;
}

/* Takes slot i out of its hash chain. */
static void unchain(struct inodes *t, uint32_t i)
{
	struct ent *e = t->slot[i];
	uint32_t *at =
	    &t->bucket[hash(e->parent, e->name) & (t->n_buckets - 1)];
	while (*at != i)
		at = &t->slot[*at]->next;
	*at = e->next;
}

/* Renames slot i to name in parent (parent's count is the caller's). */
static void rename_slot(struct inodes *t, uint32_t i, uint32_t parent,
			const char *name)
{
	unchain(t, i);
	size_t len = strlen(name);
	struct ent *e = xrealloc(t->slot[i], sizeof *e + len + 1);
	memcpy(e->name, name, len + 1);
	e->parent = parent;
	t->slot[i] = e;
	uint32_t h = hash(parent, name) & (t->n_buckets - 1);
	e->next = t->bucket[h];
	t->bucket[h] = i;
}

static void detach(struct inodes *t, uint32_t i)
{
	char name[32];
	snprintf(name, sizeof name, "/%u", i); /* no real name has a '/' */
	rename_slot(t, i, t->slot[i]->parent, name);
}

void inodes_detach(struct inodes *t, uint64_t parent, const char *name)
{
	pthread_mutex_lock(&t->mu);
	uint32_t i = get(t, parent) ? find(t, (uint32_t)parent, name) : 0;
	if (i)
		detach(t, i);
	pthread_mutex_unlock(&t->mu);
}

bool inodes_move(struct inodes *t, uint64_t parent, const char *name,
		 uint64_t newparent, const char *newname)
{
	pthread_mutex_lock(&t->mu);
	bool ok = get(t, parent) && get(t, newparent);
	uint32_t i = ok ? find(t, (uint32_t)parent, name) : 0;
	if (i) {
		uint32_t old = find(t, (uint32_t)newparent, newname);
		if (old && old != i)
			detach(t, old);
		if (old != i) {
			uint32_t from = t->slot[i]->parent;
			t->slot[newparent]->refs++;
			rename_slot(t, i, (uint32_t)newparent, newname);
			/* The old parent is held by the kernel (it sent the
			 * rename), so its count stays above zero; were it
			 * not, it is kept rather than freed under a caller. */
			if (t->slot[from]->refs > 1 || from == INODES_ROOT)
				t->slot[from]->refs--;
		}
	}
	pthread_mutex_unlock(&t->mu);
	return ok;
}

uint64_t inodes_gen(struct inodes *t, uint64_t ino)
{
	pthread_mutex_lock(&t->mu);
	uint64_t g = get(t, ino) ? t->gen[ino] : 0;
	pthread_mutex_unlock(&t->mu);
	return g;
}

size_t inodes_count(struct inodes *t)
{
	pthread_mutex_lock(&t->mu);
	size_t n = t->count;
	pthread_mutex_unlock(&t->mu);
	return n;
}
