/* fuzz_model.c — libFuzzer target for the core's code that walks json-c
 * objects: model.c's parsers, naming.c, cache.c's snapshot builders and
 * tree.c's resolver, lister and renderers.
 *
 * The input is JSON text. The root, and each element of every array member
 * of the root (`items`, `data`, and the legacy availability shape keyed by
 * GPU type) or of a root array, is parsed as an offer, a live pod, a
 * history pod and a wallet. The results become the four snapshots of a
 * cache (installed with TTLs that never expire, so nothing is fetched), and
 * every directory of the tree is listed and every file rendered. Besides
 * the sanitizers, the walk checks what DESIGN.md promises: names are safe
 * path components, unique in their directory and resolve; value files are
 * one line; every pod answers to its id. A broken promise aborts. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "log.h"
#include "model.h"
#include "naming.h"
#include "tree.h"

#define MAX_ITEMS 256	     /* per list: naming and dedupe are quadratic */
#define NOW	  1767225600 /* 2026-01-01: pod_cost at a fixed time */

static void fail(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

static void fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("fuzz_model: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	abort();
}

struct lists {
	struct offer_list offers;
	struct pod_list pods, hist;
	struct wallet wallet;
	bool have_wallet;
	size_t cap_offers, cap_pods, cap_hist;
};

static void add_offer(struct lists *l, json_object *o, bool multinode)
{
	if (l->offers.n == MAX_ITEMS)
		return;
	if (l->offers.n == l->cap_offers) {
		l->cap_offers = l->cap_offers ? 2 * l->cap_offers : 8;
		l->offers.v =
		    xrealloc(l->offers.v, l->cap_offers * sizeof *l->offers.v);
	}
	if (offer_parse(o, multinode, &l->offers.v[l->offers.n]) == 0)
		l->offers.n++;
}

static void add_pod(struct pod_list *pl, size_t *cap, json_object *o,
		    bool history)
{
	if (pl->n == MAX_ITEMS)
		return;
	if (pl->n == *cap) {
		*cap = *cap ? 2 * *cap : 8;
		pl->v = xrealloc(pl->v, *cap * sizeof *pl->v);
	}
	struct pod *p = &pl->v[pl->n];
	if (pod_parse(o, history, p) != 0)
		return;
	/* What the FUSE layer and mkdir ask of a pod, on every pod. */
	double cost;
	(void)pod_status(p);
	(void)pod_ready(p);
	(void)pod_bills(p);
	(void)pod_cost(p, NULL, NOW, &cost);
	pl->n++;
}

static void add_all(struct lists *l, json_object *o, size_t index)
{
	add_offer(l, o, index & 1);
	add_pod(&l->pods, &l->cap_pods, o, false);
	add_pod(&l->hist, &l->cap_hist, o, true);
	struct wallet w;
	if (wallet_parse(o, &w) == 0) {
		if (l->have_wallet)
			wallet_free(&l->wallet);
		l->wallet = w;
		l->have_wallet = true;
	}
}

static void add_array(struct lists *l, json_object *arr)
{
	size_t n = json_object_array_length(arr);
	for (size_t i = 0; i < n && i < MAX_ITEMS; i++)
		add_all(l, json_object_array_get_idx(arr, i), i);
}

/* ---- the walk ---- */

struct names {
	char **v;
	size_t n;
};

static int collect(void *ctx, const char *name)
{
	struct names *ns = ctx;
	ns->v = xrealloc(ns->v, (ns->n + 1) * sizeof *ns->v);
	ns->v[ns->n++] = xstrdup(name);
	return 0;
}

static void names_free(struct names *ns)
{
	for (size_t i = 0; i < ns->n; i++)
		free(ns->v[i]);
	free(ns->v);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_list_file(const char *name)
{
	return !strcmp(name, "images") || !strcmp(name, "ssh") ||
	       !strcmp(name, "ip");
}

/* DESIGN.md: one value and a newline; a list is one item per line. */
static void check_value(const char *path, const char *name, const struct buf *b)
{
	if (!strcmp(name, "json")) {
		if (!b->len || b->data[b->len - 1] != '\n')
			fail("%s: json does not end with a newline", path);
		return;
	}
	if (!b->len || b->data[b->len - 1] != '\n')
		fail("%s: value does not end with a newline", path);
	size_t lines = 0;
	for (size_t i = 0; i < b->len; i++) {
		unsigned char c = (unsigned char)b->data[i];
		if (c == '\n')
			lines++;
		else if (c < 0x20 || c == 0x7f)
			fail("%s: control character 0x%02x in a value", path,
			     c);
	}
	if (lines != 1 && !is_list_file(name))
		fail("%s: %zu lines in a one-value file", path, lines);
}

static void walk(struct tree *t, const char *path, int depth);

static void visit(struct tree *t, const char *dir, const char *name, int depth)
{
	struct buf path;
	buf_init(&path);
	buf_printf(&path, "%s/%s", strcmp(dir, "/") ? dir : "", name);
	struct node n;
	int rc = tree_resolve(t, path.data, &n);
	if (rc)
		fail("%s: listed but does not resolve (errno %d)", path.data,
		     -rc);
	(void)node_mode(&n);
	struct buf out;
	buf_init(&out);
	if (n.type == N_DIR) {
		node_release(&n);
		walk(t, path.data, depth + 1);
	} else if (n.type == N_LINK) {
		if (tree_readlink(t, &n, &out))
			fail("%s: readlink failed", path.data);
		node_release(&n);
		/* Relative to the link's directory; "../" steps up (the
		 * tree itself never resolves ".."). */
		struct buf target;
		buf_init(&target);
		buf_adds(&target, dir);
		const char *rel = out.data;
		for (; !strncmp(rel, "../", 3); rel += 3) {
			char *slash = strrchr(target.data, '/');
			target.len = slash ? (size_t)(slash - target.data) : 0;
			target.data[target.len] = '\0';
		}
		buf_printf(&target, "/%s", rel);
		struct node tn;
		if (tree_resolve(t, target.data, &tn) || tn.type != N_DIR)
			fail("%s: link to %s, which is no directory", path.data,
			     out.data);
		node_release(&tn);
		buf_free(&target);
	} else {
		if (tree_render(t, &n, &out))
			fail("%s: render failed", path.data);
		/* run and exit are streams (fs.c), not value files. */
		if ((n.dir == D_OFFER || n.dir == D_POD || n.dir == D_HIST ||
		     !strcmp(path.data, "/balance")) &&
		    !(n.file->flags & F_STREAM))
			check_value(path.data, name, &out);
		node_release(&n);
	}
	buf_free(&out);
	buf_free(&path);
}

static void walk(struct tree *t, const char *path, int depth)
{
	/* The deepest: /pods/<p>/nodes/<n>/jobs/<job>/ (a multi-node pod's
	 * node jobs; history/<p>/nodes/<n>/jobs/<job>/ likewise). */
	if (depth > 6)
		fail("%s: the tree is deeper than DESIGN.md's", path);
	struct node n;
	if (tree_resolve(t, path, &n))
		fail("%s: does not resolve", path);
	struct names ns = {NULL, 0};
	if (tree_list(t, &n, collect, &ns))
		fail("%s: list failed", path);
	node_release(&n);
	for (size_t i = 0; i < ns.n; i++) {
		const char *s = ns.v[i];
		if (!safe_name(s) || s[0] == '.' || strlen(s) > 255)
			fail("%s: unsafe, hidden or too long name '%s'", path,
			     s);
		/* Type directories hold offers only, never "cheapest". */
		if (!strncmp(path, "/availability/", 14) &&
		    !strchr(path + 14, '/') && !strcmp(s, "cheapest"))
			fail("%s: an offer named cheapest", path);
	}
	if (ns.n)
		qsort(ns.v, ns.n, sizeof *ns.v, cmp_str);
	for (size_t i = 1; i < ns.n; i++)
		if (!strcmp(ns.v[i], ns.v[i - 1]))
			fail("%s: '%s' listed twice", path, ns.v[i]);
	for (size_t i = 0; i < ns.n; i++)
		visit(t, path, ns.v[i], depth);
	names_free(&ns);
}

/* Every pod answers to its id (an id always wins over a name). */
static void check_ids(struct tree *t, const struct snap *s, const char *top)
{
	for (size_t i = 0; i < s->pods.n; i++) {
		const struct pod *p = &s->pods.v[i];
		struct buf path, out;
		buf_init(&path);
		buf_init(&out);
		buf_printf(&path, "/%s/%s/id", top, p->id);
		struct node n;
		int rc = tree_resolve(t, path.data, &n);
		if (rc)
			fail("%s: errno %d", path.data, -rc);
		if (tree_render(t, &n, &out) || strlen(p->id) + 1 != out.len ||
		    strncmp(out.data, p->id, out.len - 1))
			fail("%s: is not the pod's id", path.data);
		node_release(&n);
		buf_free(&out);
		buf_free(&path);
	}
}

static struct snap *wallet_snap(struct wallet *w)
{
	struct snap *s = snap_new(SNAP_WALLET);
	s->fetched = NOW;
	s->wallet = *w;
	memset(w, 0, sizeof *w);
	return s;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_init(16, false);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = xstrndup((const char *)data, size);
	json_object *root = json_tokener_parse(text);
	free(text);
	if (!root)
		return 0;

	struct lists l;
	memset(&l, 0, sizeof l);
	add_all(&l, root, 0);
	if (json_object_is_type(root, json_type_array)) {
		add_array(&l, root);
	} else if (json_object_is_type(root, json_type_object)) {
		json_object_object_foreach(root, key, val)
		{
			(void)key;
			if (json_object_is_type(val, json_type_array))
				add_array(&l, val);
		}
	}
	for (size_t i = 0; i < l.offers.n; i++)
		free(gpu_type_dir(l.offers.v[i].provider));

	/* The snapshots take the lists' contents. */
	double ttl[SNAP_KINDS];
	for (int k = 0; k < SNAP_KINDS; k++)
		ttl[k] = 1e12;
	struct api api = {.http = NULL}; /* never called: nothing expires */
	struct cache *cache = cache_new(&api, ttl);
	struct snap *pods = snap_from_pods(&l.pods, false);
	struct snap *hist = snap_from_pods(&l.hist, true);
	cache_install(cache, snap_from_offers(&l.offers));
	cache_install(cache, pods);
	cache_install(cache, hist);
	cache_install(cache, wallet_snap(&l.wallet));
	/* The account's other kinds, empty: every kind is held, so nothing
	 * is ever fetched (the api has no client). */
	struct key_list no_keys = {0};
	cache_install(cache, snap_from_keys(&no_keys));
	struct pod_list no_disks = {0};
	struct snap *disks = snap_from_pods(&no_disks, false);
	disks->kind = SNAP_DISKS;
	cache_install(cache, disks);
	struct offer_list no_doffers = {0};
	struct snap *doffers = snap_from_offers(&no_doffers);
	doffers->kind = SNAP_DISK_OFFERS;
	cache_install(cache, doffers);
	free(l.offers.v);
	free(l.pods.v);
	free(l.hist.v);

	struct tree_opts to = {.cache = cache};
	struct tree *t = tree_new(&to);
	walk(t, "/", 0);
	check_ids(t, pods, "pods");
	check_ids(t, hist, "history");
	/* Probe names are answered from the cache, whatever the input. */
	static const char *const probes[] = {"/.git",
					     "/pods/HEAD",
					     "/pods/.DS_Store",
					     "/availability/._x",
					     "/history/autorun.inf",
					     "/availability/x/cheapest/price",
					     "/cheapest/HEAD",
					     "/cheapest/x/price"};
	for (size_t i = 0; i < sizeof probes / sizeof *probes; i++) {
		struct node n;
		if (tree_resolve(t, probes[i], &n) == 0)
			node_release(&n);
	}
	tree_free(t);
	cache_free(cache);
	json_object_put(root);
	return 0;
}
