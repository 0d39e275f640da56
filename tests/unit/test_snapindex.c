/* test_snapindex.c — the index over one listing on its own, with no cache
 * and no HTTP: snapshots built from the fixtures' offers and pods, and
 * every lookup the tree makes (types and offers by position and by name,
 * the cheapest, pods by position, id and name) checked against the lists
 * they were built from. Lookups allocate nothing, so a crawl's worth of
 * them leaves the heap as it was. */
#include <malloc.h>
#include <stdlib.h>

#include "log.h"
#include "naming.h"
#include "snapindex.h"
#include "t.h"

static const char *dir;

static json_object *load(const char *rel)
{
	char path[1024];
	snprintf(path, sizeof path, "%s/%s", dir, rel);
	return json_object_from_file(path);
}

static void add_offers(struct offer_list *l, json_object *arr, size_t *usable)
{
	size_t n = arr ? json_object_array_length(arr) : 0;
	l->v = xrealloc(l->v, (l->n + n + 1) * sizeof *l->v);
	for (size_t i = 0; i < n; i++)
		if (!offer_parse(json_object_array_get_idx(arr, i), false,
				 &l->v[l->n])) {
			char *d = gpu_type_dir(l->v[l->n].gpu_type);
			*usable += d != NULL;
			free(d);
			l->n++;
		}
}

/* The recorded page and the legacy set (a map of arrays). */
static struct snap *fixture_offers(size_t *usable)
{
	struct offer_list l = {NULL, 0};
	*usable = 0;
	json_object *page = load("availability_response.json");
	add_offers(&l, json_object_object_get(page, "items"), usable);
	json_object_put(page);
	json_object *legacy = load("legacy/availability_legacy_response.json");
	json_object_object_foreach(legacy, key, arr)
	{
		(void)key;
		add_offers(&l, arr, usable);
	}
	json_object_put(legacy);
	return snap_from_offers(&l);
}

static void test_offers(void)
{
	size_t usable;
	struct snap *s = fixture_offers(&usable);
	CHECK(s->kind == SNAP_OFFERS && usable > 50);
	CHECK(snap_n_types(s) >= 3);
	CHECK(snap_n_pods(s) == 0 && snap_pod(s, "x") == NULL);
	size_t seen = 0, with_cheapest = 0;
	bool types_sorted = true, found_by_name = true, offers_sorted = true;
	bool offers_found = true, in_type = true, cheapest_ok = true;
	for (size_t i = 0; i < snap_n_types(s); i++) {
		const struct gpu_type *g = snap_type_at(s, i);
		const char *tn = type_name(g);
		if (i && strcmp(type_name(snap_type_at(s, i - 1)), tn) >= 0)
			types_sorted = false;
		if (snap_type(s, tn) != g)
			found_by_name = false;
		const struct offer *best = NULL;
		for (size_t j = 0; j < type_n_offers(g); j++) {
			const struct offer *o = type_offer_at(g, j);
			seen++;
			if (j &&
			    strcmp(type_offer_at(g, j - 1)->name, o->name) >= 0)
				offers_sorted = false;
			if (type_offer(g, o->name) != o)
				offers_found = false;
			char *d = gpu_type_dir(o->gpu_type);
			if (!d || strcmp(d, tn))
				in_type = false;
			free(d);
			if (offer_plain_rentable(o) &&
			    (!best || o->price.d < best->price.d))
				best = o;
		}
		const struct offer *c = type_cheapest(g);
		with_cheapest += c != NULL;
		if ((c == NULL) != (best == NULL) ||
		    (c &&
		     (!offer_plain_rentable(c) || c->price.d != best->price.d)))
			cheapest_ok = false;
		CHECK(type_offer_at(g, type_n_offers(g)) == NULL);
	}
	CHECK(types_sorted);
	CHECK(found_by_name);
	CHECK(offers_sorted);
	CHECK(offers_found);
	CHECK(in_type);
	CHECK(cheapest_ok);
	CHECK(with_cheapest >= 1);
	/* Every offer with a usable GPU type is listed once. */
	CHECK(seen == usable);
	CHECK(snap_type(s, "NO_SUCH_GPU") == NULL);
	CHECK(snap_type(s, "") == NULL);
	CHECK(snap_type_at(s, snap_n_types(s)) == NULL);
	const struct gpu_type *a100 = snap_type(s, "A100_80GB");
	CHECK(a100 && type_offer(a100, "runpod-US-KS-2-PCIe-1x") != NULL);
	CHECK(type_offer(a100, "no-such-offer") == NULL);
	/* Lookups in nothing find nothing. */
	CHECK(snap_type(NULL, "A100_80GB") == NULL && snap_n_types(NULL) == 0);
	CHECK(type_n_offers(NULL) == 0 && type_cheapest(NULL) == NULL);
	CHECK(type_offer(NULL, "x") == NULL);

	/* A crawl's lookups allocate nothing. */
	struct mallinfo2 before = mallinfo2();
	for (int round = 0; round < 100; round++)
		for (size_t i = 0; i < snap_n_types(s); i++) {
			const struct gpu_type *g = snap_type_at(s, i);
			(void)snap_type(s, type_name(g));
			for (size_t j = 0; j < type_n_offers(g); j++)
				(void)type_offer(g, type_offer_at(g, j)->name);
		}
	struct mallinfo2 after = mallinfo2();
	CHECK(after.uordblks == before.uordblks);
	snap_put(s);
}

static void test_pods(void)
{
	json_object *page = load("synthetic/pods_list.json");
	json_object *data = json_object_object_get(page, "data");
	size_t n = json_object_array_length(data);
	struct pod_list l = {xcalloc(n + 2, sizeof(struct pod)), 0};
	for (size_t i = 0; i < n; i++)
		if (pod_parse(json_object_array_get_idx(data, i), false,
			      &l.v[l.n]) == 0)
			l.n++;
	json_object_put(page);
	/* A pod whose name is another's id: that name is never its
	 * directory, and the id wins a lookup. */
	json_object *o = json_tokener_parse(
	    "{\"id\":\"zz1\",\"name\":\"cm9zq1x2a0003l508abcdefgh\","
	    "\"status\":\"ACTIVE\"}");
	if (pod_parse(o, false, &l.v[l.n]) == 0)
		l.n++;
	json_object_put(o);
	struct snap *s = snap_from_pods(&l, false);
	CHECK(l.n == 0 && l.v == NULL); /* taken */
	CHECK(s->kind == SNAP_PODS && snap_n_types(s) == 0);
	/* The fixture lists one pod twice: kept once. */
	CHECK(snap_n_pods(s) == 3);
	bool sorted = true, by_id = true, by_dir = true;
	for (size_t i = 0; i < snap_n_pods(s); i++) {
		const struct pod *p = snap_pod_at(s, i);
		if (i && strcmp(snap_pod_at(s, i - 1)->dir, p->dir) >= 0)
			sorted = false;
		if (snap_pod_id(s, p->id) != p || snap_pod(s, p->id) != p)
			by_id = false;
		if (snap_pod(s, p->dir) != p && snap_pod_id(s, p->dir) == NULL)
			by_dir = false;
	}
	CHECK(sorted);
	CHECK(by_id);
	CHECK(by_dir);
	CHECK(snap_pod_at(s, snap_n_pods(s)) == NULL);
	const struct pod *a = snap_pod(s, "a100-1");
	CHECK(a && !strcmp(a->id, "cm9zq1x2a0001l508abcdefgh"));
	/* By name through snap_pod, never through snap_pod_id. */
	CHECK(snap_pod_id(s, "a100-1") == NULL);
	const struct pod *z = snap_pod_id(s, "zz1");
	CHECK(z && !strcmp(z->dir, "zz1"));
	const struct pod *h = snap_pod(s, "cm9zq1x2a0003l508abcdefgh");
	CHECK(h && !strcmp(h->name, "h100-16"));
	CHECK(snap_pod(s, "nope") == NULL && snap_pod_id(s, "nope") == NULL);
	CHECK(snap_pod(NULL, "a100-1") == NULL && snap_n_pods(NULL) == 0);
	snap_put(s);

	/* An empty listing. */
	struct pod_list none = {NULL, 0};
	s = snap_from_pods(&none, true);
	CHECK(s->kind == SNAP_HISTORY && snap_n_pods(s) == 0);
	CHECK(snap_pod(s, "a100-1") == NULL && snap_pod_at(s, 0) == NULL);
	snap_put(s);
}

/* Listings rebuilt again and again hold the same memory: the offers'
 * repeated values are one shared copy each, gone with the last listing
 * that holds them, and each offer's JSON text is kept deflated, at its
 * own size. */
static void test_memory(void)
{
	size_t usable, before = str_interned();
	struct snap *s = fixture_offers(&usable);
	size_t held = str_interned();
	CHECK(held > before);
	const struct offer *first = NULL;
	bool shared = true, json_fits = true;
	for (size_t i = 0; i < s->offers.n; i++) {
		const struct offer *o = &s->offers.v[i];
		if (o->provider && first && first->provider &&
		    !strcmp(o->provider, first->provider) &&
		    o->provider != first->provider)
			shared = false;
		if (!first && o->provider)
			first = o;
		/* Deflated, at its own size: a fraction of the text. */
		if (malloc_usable_size(o->zjson) >
			o->zjson_len + 2 * sizeof(void *) ||
		    o->zjson_len * 4 > o->json_len)
			json_fits = false;
	}
	CHECK(shared);
	CHECK(json_fits);
	for (int round = 0; round < 3; round++) {
		struct snap *again = fixture_offers(&usable);
		CHECK(str_interned() == held);
		snap_put(again);
	}
	snap_put(s);
	CHECK(str_interned() == before);
}

/* A pod rented from offer o, as the API would list it. */
static json_object *pod_from(const struct offer *o, int i, bool with_dc)
{
	json_object *j = json_object_new_object();
	char id[64];
	snprintf(id, sizeof id, "pod%04d", i);
	json_object_object_add(j, "id", json_object_new_string(id));
	json_object_object_add(j, "name", json_object_new_string(id));
	json_object_object_add(j, "status", json_object_new_string("ACTIVE"));
	json_object_object_add(j, "gpuName",
			       json_object_new_string(o->gpu_type));
	if (o->gpu_count.set)
		json_object_object_add(j, "gpuCount",
				       json_object_new_int64(o->gpu_count.i));
	if (o->provider)
		json_object_object_add(j, "providerType",
				       json_object_new_string(o->provider));
	if (o->socket)
		json_object_object_add(j, "socket",
				       json_object_new_string(o->socket));
	if (with_dc && o->data_center)
		json_object_object_add(j, "dataCenterId",
				       json_object_new_string(o->data_center));
	if (with_dc && o->cloud_id)
		json_object_object_add(j, "cloudId",
				       json_object_new_string(o->cloud_id));
	return j;
}

static bool in_snap(const struct snap *s, const struct offer *o)
{
	return o >= s->offers.v && o < s->offers.v + s->offers.n;
}

/* A pod's offer is worked out once per pair of snapshots: the memoized
 * answer is the one worked out afresh, every time it is asked; another
 * offers snapshot (a new serial) is answered from that snapshot, never
 * from what was kept for the last one. */
static void test_pod_offer(void)
{
	size_t usable;
	struct snap *offers = fixture_offers(&usable);
	struct pod_list l = {NULL, 0};
	l.v = xcalloc(2 * offers->offers.n, sizeof *l.v);
	for (size_t i = 0; i < offers->offers.n; i++) {
		const struct offer *o = &offers->offers.v[i];
		if (!o->gpu_type)
			continue;
		json_object *j = pod_from(o, (int)l.n, i % 2);
		if (pod_parse(j, false, &l.v[l.n]) == 0)
			l.n++;
		json_object_put(j);
	}
	size_t n_pods = l.n;
	struct snap *pods = snap_from_pods(&l, false);
	CHECK(snap_n_pods(pods) == n_pods && n_pods > 50);
	CHECK(offers->serial && pods->serial != offers->serial);

	size_t agree = 0, found = 0, again = 0;
	for (size_t round = 0; round < 2; round++)
		for (size_t i = 0; i < snap_n_pods(pods); i++) {
			const struct pod *p = snap_pod_at(pods, i);
			const struct gpu_type *g1 = NULL, *g2 = NULL;
			const struct offer *memo =
			    snap_pod_offer(pods, p, offers, &g1);
			const struct offer *fresh =
			    snap_pod_offer(NULL, p, offers, &g2);
			if (memo == fresh && (!memo || g1 == g2))
				*(round ? &again : &agree) += 1;
			if (!round && memo) {
				found++;
				CHECK(in_snap(offers, memo));
				CHECK(type_offer(g1, memo->name) == memo);
			}
		}
	CHECK(agree == n_pods);
	CHECK(again == n_pods);
	CHECK(found > n_pods / 4);

	/* A new offers snapshot: its own offers, recomputed. */
	struct snap *offers2 = fixture_offers(&usable);
	CHECK(offers2->serial != offers->serial);
	size_t moved = 0, same = 0;
	for (size_t i = 0; i < snap_n_pods(pods); i++) {
		const struct pod *p = snap_pod_at(pods, i);
		const struct offer *a = snap_pod_offer(pods, p, offers, NULL);
		const struct offer *b = snap_pod_offer(pods, p, offers2, NULL);
		if (!a && !b)
			same++;
		else if (a && b && in_snap(offers, a) && in_snap(offers2, b) &&
			 !strcmp(a->name, b->name))
			moved++, same++;
	}
	CHECK(same == n_pods && moved == found);
	/* An empty offers listing: no pod has an offer any more. */
	struct offer_list none = {NULL, 0};
	struct snap *empty = snap_from_offers(&none);
	size_t nothing = 0;
	for (size_t i = 0; i < snap_n_pods(pods); i++)
		nothing +=
		    !snap_pod_offer(pods, snap_pod_at(pods, i), empty, NULL);
	CHECK(nothing == n_pods);
	/* And back: the answers of the first snapshot again. */
	size_t back = 0;
	for (size_t i = 0; i < snap_n_pods(pods); i++) {
		const struct pod *p = snap_pod_at(pods, i);
		back += snap_pod_offer(pods, p, offers, NULL) ==
			snap_pod_offer(NULL, p, offers, NULL);
	}
	CHECK(back == n_pods);
	/* A pod of another snapshot (not in `pods`): worked out, not kept. */
	const struct pod *p0 = snap_pod_at(pods, 0);
	CHECK(snap_pod_offer(empty, p0, offers, NULL) ==
	      snap_pod_offer(NULL, p0, offers, NULL));
	snap_put(empty);
	snap_put(offers2);
	snap_put(pods);
	snap_put(offers);
}

static void test_refs(void)
{
	struct snap *s = snap_new(SNAP_WALLET);
	CHECK(snap_ref(s) == s);
	snap_put(s);
	CHECK(atomic_load(&s->refs) == 1);
	CHECK(snap_n_types(s) == 0 && snap_n_pods(s) == 0);
	snap_put(s);
	snap_put(NULL);
}

int main(int argc, char **argv)
{
	dir = argc > 1 ? argv[1] : "tests/fixtures";
	log_init(100, false);
	test_offers();
	test_pods();
	test_refs();
	test_memory();
	test_pod_offer();
	return t_done();
}
