/* test_naming.c — offer and pod names: unique, made from each offer's own
 * fields (stable whatever the API's order, the siblings, prices and stock),
 * [A-Za-z0-9._-] only, and DESIGN.md's pod rules. */
#include <ctype.h>
#include <stdlib.h>

#include "cache.h"
#include "naming.h"
#include "t.h"

static struct offer mk(const char *provider, const char *dc,
		       const char *country, const char *socket, int count,
		       const char *security, int spot)
{
	struct offer o;
	memset(&o, 0, sizeof o);
	o.provider = str_intern(provider);
	o.data_center = str_intern(dc);
	o.country = str_intern(country);
	o.socket = str_intern(socket);
	o.security = str_intern(security);
	o.gpu_type = str_intern("H100_80GB");
	o.gpu_count.set = o.gpu_count.integral = true;
	o.gpu_count.i = count;
	o.is_spot = spot;
	offer_set_json(&o, "{}");
	return o;
}

static bool name_ok(const char *s)
{
	return safe_name(s) && s[0] != '.' && strlen(s) <= 255 &&
	       strcmp(s, "cheapest") != 0;
}

/* base, '-' and 6 hex digits: a twin's suffix, never a counter. */
static bool twin_name(const char *s, const char *base)
{
	size_t bl = strlen(base);
	if (strncmp(s, base, bl) || s[bl] != '-' || strlen(s + bl + 1) != 6)
		return false;
	for (const char *p = s + bl + 1; *p; p++)
		if (!isxdigit((unsigned char)*p) || isupper((unsigned char)*p))
			return false;
	return true;
}

static void set_json(struct offer *o, const char *json)
{
	offer_set_json(o, json);
}

static void set_str(const char **field, const char *s)
{
	str_unintern(*field);
	*field = str_intern(s);
}

/* Names n offers, given as indices into v, in that order; each offer's
 * old name is dropped first. */
static void name_some(struct offer *v, const int *idx, size_t n)
{
	struct offer *p[32];
	for (size_t i = 0; i < n; i++) {
		p[i] = &v[idx[i]];
		free(p[i]->name);
		p[i]->name = NULL;
	}
	name_offers(p, n);
}

#define N_OFFERS 9

static void build(struct offer *v)
{
	v[0] = mk("runpod", "US-KS-2", "US", "PCIe", 1, "secure_cloud", -1);
	v[1] = mk("runpod", NULL, "CA", "SXM5", 8, "secure_cloud", -1);
	/* Same place, differ only in security. */
	v[2] = mk("runpod", NULL, NULL, "PCIe", 4, "secure_cloud", -1);
	v[3] = mk("runpod", NULL, NULL, "PCIe", 4, "community_cloud", -1);
	/* Differ only in spot. */
	v[4] = mk("hyperstack", "CANADA-1", "CA", "SXM5", 8, "secure_cloud", 1);
	v[5] = mk("hyperstack", "CANADA-1", "CA", "SXM5", 8, "secure_cloud", 0);
	/* True twins. */
	v[6] = mk("lambda", "us-west", "US", "SXM5", 1, "secure_cloud", -1);
	v[7] = mk("lambda", "us-west", "US", "SXM5", 1, "secure_cloud", -1);
	/* Hostile. */
	v[8] = mk("evil/provider x", "..", NULL, "PCIe\n", 2, NULL, -1);
}

static void test_offers(void)
{
	struct offer a[N_OFFERS], b[N_OFFERS];
	build(a);
	build(b);
	struct offer *pa[N_OFFERS], *pb[N_OFFERS];
	for (int i = 0; i < N_OFFERS; i++) {
		pa[i] = &a[i];
		pb[N_OFFERS - 1 - i] = &b[i]; /* the API's order reversed */
	}
	/* Make the twins differ in their JSON so identity order is total. */
	set_json(&a[7], "{\"x\":1}");
	set_json(&b[7], "{\"x\":1}");
	name_offers(pa, N_OFFERS);
	name_offers(pb, N_OFFERS);
	CHECK_STR(a[0].name, "runpod-US-KS-2-PCIe-1x");
	CHECK_STR(a[1].name, "runpod-CA-SXM5-8x");
	CHECK_STR(a[2].name, "runpod-PCIe-4x");
	CHECK_STR(a[3].name, "runpod-PCIe-4x-community");
	CHECK_STR(a[4].name, "hyperstack-CANADA-1-SXM5-8x-spot");
	CHECK_STR(a[5].name, "hyperstack-CANADA-1-SXM5-8x");
	CHECK(twin_name(a[6].name, "lambda-us-west-SXM5-1x"));
	CHECK(twin_name(a[7].name, "lambda-us-west-SXM5-1x"));
	CHECK(strcmp(a[6].name, a[7].name) != 0);
	CHECK_STR(a[8].name, "evil_provider_x-__-PCIe_-2x");
	for (int i = 0; i < N_OFFERS; i++) {
		CHECK(name_ok(a[i].name));
		CHECK_STR(a[i].name, b[i].name); /* stable across order */
		for (int j = 0; j < i; j++)
			CHECK(strcmp(a[i].name, a[j].name) != 0);
	}
	for (int i = 0; i < N_OFFERS; i++) {
		offer_free(&a[i]);
		offer_free(&b[i]);
	}
}

/* Many identical offers: all unique, suffixes never collide with a real
 * base name that looks like a suffix. */
static void test_many_twins(void)
{
	enum { N = 50 };
	struct offer v[N + 1];
	struct offer *p[N + 1];
	for (int i = 0; i < N; i++) {
		v[i] = mk("p", "dc", NULL, NULL, 1, NULL, -1);
		char j[32];
		snprintf(j, sizeof j, "{\"n\":%d}", i);
		set_json(&v[i], j);
		p[i] = &v[i];
	}
	/* An offer whose base name is what the second twin would get. */
	v[N] = mk("p", "dc", NULL, NULL, 1, NULL, -1);
	set_str(&v[N].data_center, NULL);
	set_str(&v[N].provider, "p-dc-1x");
	v[N].gpu_count.set = false;
	set_json(&v[N], "{}");
	p[N] = &v[N];
	/* p-dc-1x-2 is free; nothing should clash anyway. */
	name_offers(p, N + 1);
	int clashes = 0;
	for (int i = 0; i <= N; i++)
		for (int j = 0; j < i; j++)
			clashes += !strcmp(v[i].name, v[j].name);
	CHECK(clashes == 0);
	for (int i = 0; i <= N; i++)
		offer_free(&v[i]);
}

/* Names longer than a path component may be (255) are cut: two offers
 * that differ only past the cut still get distinct names. */
static void test_long_names(void)
{
	char longp[400], longq[400];
	memset(longp, 'p', sizeof longp - 2);
	longp[sizeof longp - 2] = 'a';
	longp[sizeof longp - 1] = '\0';
	memcpy(longq, longp, sizeof longq);
	longq[sizeof longq - 2] = 'b';
	struct offer v[2] = {mk(longp, "dc", NULL, "PCIe", 1, NULL, -1),
			     mk(longq, "dc", NULL, "PCIe", 1, NULL, -1)};
	struct offer *p[2] = {&v[0], &v[1]};
	name_offers(p, 2);
	CHECK(strlen(v[0].name) <= 255 && name_ok(v[0].name));
	CHECK(strlen(v[1].name) <= 255 && name_ok(v[1].name));
	CHECK(strcmp(v[0].name, v[1].name) != 0);
	offer_free(&v[0]);
	offer_free(&v[1]);
	/* No offer is named like the root's cheapest/: the name the old link
	 * in each type directory had never names an offer. */
	struct offer link = mk("cheapest", NULL, NULL, NULL, 1, NULL, -1);
	link.gpu_count.set = false;
	struct offer *plink = &link;
	name_offers(&plink, 1);
	CHECK(twin_name(link.name, "cheapest"));
	offer_free(&link);
	/* Long names keep their qualifiers. */
	struct offer lq =
	    mk(longp, "dc", NULL, "PCIe", 1, "community_cloud", 1);
	struct offer *plq = &lq;
	name_offers(&plq, 1);
	CHECK(name_ok(lq.name));
	CHECK(strlen(lq.name) > 15 &&
	      !strcmp(lq.name + strlen(lq.name) - 15, "-community-spot"));
	offer_free(&lq);
	/* A count too large for a long long is left out of the name. */
	struct offer big = mk("p", "dc", NULL, "PCIe", 1, NULL, -1);
	big.gpu_count.integral = false;
	big.gpu_count.d = 1e300;
	struct offer *pbig = &big;
	name_offers(&pbig, 1);
	CHECK_STR(big.name, "p-dc-PCIe");
	offer_free(&big);
	char *d = gpu_type_dir(longp);
	CHECK(d && strlen(d) == 255 && name_ok(d));
	free(d);
}

#define N_STABLE 8

static void build_stable(struct offer *v)
{
	v[0] = mk("runpod", "US-KS-2", "US", "PCIe", 1, "secure_cloud", -1);
	v[1] = mk("runpod", "US-KS-2", "US", "PCIe", 1, "community_cloud", -1);
	v[2] = mk("runpod", "US-KS-2", "US", "PCIe", 1, "secure_cloud", 1);
	v[3] = mk("runpod", "US-KS-2", "US", "PCIe", 1, "community_cloud", 1);
	/* Twins told apart by cloud_id. */
	v[4] = mk("lambda", "us-west", "US", "SXM5", 8, "secure_cloud", -1);
	v[5] = mk("lambda", "us-west", "US", "SXM5", 8, "secure_cloud", -1);
	set_str(&v[4].cloud_id, "NVIDIA H100 80GB HBM3");
	set_str(&v[5].cloud_id, "NVIDIA H100 SXM5");
	/* Twins alike in every parsed field: told apart by their JSON (not
	 * its prices or stock). */
	v[6] = mk("massed", "dc1", "US", "PCIe", 2, "secure_cloud", -1);
	v[7] = mk("massed", "dc1", "US", "PCIe", 2, "secure_cloud", -1);
	set_json(&v[6], "{\"internetSpeed\":25,\"prices\":{\"onDemand\":1},"
			"\"stockStatus\":\"Low\"}");
	set_json(&v[7], "{\"internetSpeed\":100,\"prices\":{\"onDemand\":1},"
			"\"stockStatus\":\"Low\"}");
	for (int i = 0; i < N_STABLE; i++) {
		v[i].price.set = true;
		v[i].price.d = 1 + i;
		v[i].stock = str_intern("High");
	}
}

/* A name depends on the offer's own fields only: not on which siblings
 * exist, their order, or the offer's price and stock; a twin's name
 * changes only when a twin of it appears or goes. */
static void test_stable(void)
{
	struct offer v[N_STABLE];
	build_stable(v);
	int all[N_STABLE] = {0, 1, 2, 3, 4, 5, 6, 7};
	name_some(v, all, N_STABLE);
	char *names[N_STABLE];
	for (int i = 0; i < N_STABLE; i++)
		names[i] = xstrdup(v[i].name);
	/* Security and spot are always said, siblings or not. */
	CHECK_STR(names[0], "runpod-US-KS-2-PCIe-1x");
	CHECK_STR(names[1], "runpod-US-KS-2-PCIe-1x-community");
	CHECK_STR(names[2], "runpod-US-KS-2-PCIe-1x-spot");
	CHECK_STR(names[3], "runpod-US-KS-2-PCIe-1x-community-spot");
	for (int i = 4; i < 6; i++)
		CHECK(twin_name(names[i], "lambda-us-west-SXM5-8x"));
	for (int i = 6; i < 8; i++)
		CHECK(twin_name(names[i], "massed-dc1-PCIe-2x"));
	for (int i = 0; i < N_STABLE; i++)
		for (int j = 0; j < i; j++)
			CHECK(strcmp(names[i], names[j]) != 0);

	/* Each offer alone (every sibling gone) keeps its name, but for a
	 * twin, which is a twin no more. */
	for (int i = 0; i < N_STABLE; i++) {
		name_some(v, &i, 1);
		if (i < 4)
			CHECK_STR(v[i].name, names[i]);
		else
			CHECK_STR(v[i].name, i < 6 ? "lambda-us-west-SXM5-8x"
						   : "massed-dc1-PCIe-2x");
	}
	/* Reversed, prices and stock changed, a sibling gone: the same. */
	int some[] = {7, 6, 5, 4, 3, 1, 0};
	for (int i = 0; i < N_STABLE; i++) {
		v[i].price.d = 100 - i;
		set_str(&v[i].stock, i % 2 ? "Low" : NULL);
	}
	set_json(&v[6], "{\"internetSpeed\":25,\"prices\":{\"onDemand\":9},"
			"\"stockStatus\":\"Unavailable\"}");
	set_json(&v[7], "{\"internetSpeed\":100,\"prices\":{\"onDemand\":0.5},"
			"\"stockStatus\":\"High\"}");
	name_some(v, some, sizeof some / sizeof *some);
	for (size_t i = 0; i < sizeof some / sizeof *some; i++)
		CHECK_STR(v[some[i]].name, names[some[i]]);
	/* A third twin appears: the other two keep their names. */
	struct offer w[N_STABLE + 1];
	memcpy(w, v, sizeof v);
	w[N_STABLE] =
	    mk("lambda", "us-west", "US", "SXM5", 8, "secure_cloud", -1);
	set_str(&w[N_STABLE].cloud_id, "NVIDIA H100 NVL");
	int more[] = {8, 0, 1, 2, 3, 4, 5, 6, 7};
	name_some(w, more, N_STABLE + 1);
	for (int i = 0; i < N_STABLE; i++)
		CHECK_STR(w[i].name, names[i]);
	CHECK(twin_name(w[N_STABLE].name, "lambda-us-west-SXM5-8x"));
	CHECK(strcmp(w[N_STABLE].name, names[4]) &&
	      strcmp(w[N_STABLE].name, names[5]));
	for (int i = 0; i <= N_STABLE; i++)
		offer_free(&w[i]);
	for (int i = 0; i < N_STABLE; i++)
		free(names[i]);
}

/* Offers alike in everything but price and stock still get unique safe
 * names; so do twins whose suffix would be another offer's name. */
static void test_indistinguishable(void)
{
	struct offer v[4];
	for (int i = 0; i < 3; i++) {
		v[i] = mk("p", "dc", NULL, "PCIe", 1, NULL, -1);
		v[i].price.set = true;
		v[i].price.d = i;
	}
	name_offers((struct offer *[]){&v[0], &v[1], &v[2]}, 3);
	for (int i = 0; i < 3; i++) {
		CHECK(name_ok(v[i].name));
		CHECK(strncmp(v[i].name, "p-dc-PCIe-1x-", 13) == 0);
		for (int j = 0; j < i; j++)
			CHECK(strcmp(v[i].name, v[j].name) != 0);
	}
	for (int i = 0; i < 3; i++)
		offer_free(&v[i]);
	/* An offer named like a twin's short name: the twins take long
	 * suffixes, and the offer keeps its name. */
	v[0] = mk("p", "dc", NULL, NULL, 1, NULL, -1);
	v[1] = mk("p", "dc", NULL, NULL, 1, NULL, 0);
	struct offer *p2[2] = {&v[0], &v[1]};
	name_offers(p2, 2);
	char *short0 = xstrdup(v[0].name);
	CHECK(twin_name(short0, "p-dc-1x"));
	offer_free(&v[0]);
	offer_free(&v[1]);
	v[0] = mk("p", "dc", NULL, NULL, 1, NULL, -1);
	v[1] = mk("p", "dc", NULL, NULL, 1, NULL, 0);
	v[2] = mk(short0, NULL, NULL, NULL, 1, NULL, -1);
	v[2].gpu_count.set = false;
	name_offers((struct offer *[]){&v[2], &v[0], &v[1]}, 3);
	CHECK_STR(v[2].name, short0);
	CHECK(strlen(v[0].name) == strlen("p-dc-1x-") + 16);
	CHECK(strncmp(v[0].name, short0, strlen(short0)) == 0);
	CHECK(strcmp(v[1].name, v[0].name) && strcmp(v[1].name, short0));
	for (int i = 0; i < 3; i++)
		offer_free(&v[i]);
	free(short0);
}

/* cheapest/ points at what mkdir could rent with no spot or prepaid key:
 * in stock (any stock but Unavailable), priced, not spot, no prepaid time. */
static void test_cheapest(void)
{
	static const char *const js[] = {
	    /* cheaper, but spot */
	    "{\"gpuType\":\"H100_80GB\",\"provider\":\"a\",\"isSpot\":true,"
	    "\"stockStatus\":\"High\",\"prices\":{\"onDemand\":0.5}}",
	    /* cheaper, but prepaid */
	    "{\"gpuType\":\"H100_80GB\",\"provider\":\"b\",\"prepaidTime\":"
	    "24,\"stockStatus\":\"High\",\"prices\":{\"onDemand\":0.6}}",
	    /* cheaper, but Unavailable */
	    "{\"gpuType\":\"H100_80GB\",\"provider\":\"c\",\"stockStatus\":"
	    "\"Unavailable\",\"prices\":{\"onDemand\":0.7}}",
	    /* no stock status, no price */
	    "{\"gpuType\":\"H100_80GB\",\"provider\":\"d\",\"prices\":"
	    "{\"onDemand\":0.8}}",
	    "{\"gpuType\":\"H100_80GB\",\"provider\":\"e\",\"stockStatus\":"
	    "\"High\"}",
	    /* rentable: the cheaper of these two wins */
	    "{\"gpuType\":\"H100_80GB\",\"provider\":\"f\",\"stockStatus\":"
	    "\"High\",\"prices\":{\"onDemand\":3},\"prepaidTime\":0}",
	    "{\"gpuType\":\"H100_80GB\",\"provider\":\"g\",\"stockStatus\":"
	    "\"Low\",\"isSpot\":false,\"prices\":{\"onDemand\":2}}",
	    /* a type with nothing rentable */
	    "{\"gpuType\":\"A100_80GB\",\"provider\":\"h\",\"isSpot\":true,"
	    "\"stockStatus\":\"High\",\"prices\":{\"onDemand\":1}}",
	};
	enum { N = sizeof js / sizeof *js };
	struct offer_list l = {xcalloc(N, sizeof(struct offer)), N};
	for (size_t i = 0; i < N; i++) {
		json_object *o = json_tokener_parse(js[i]);
		CHECK(offer_parse(o, false, &l.v[i]) == 0);
		json_object_put(o);
	}
	CHECK(!offer_plain_rentable(&l.v[0]) && !offer_plain_rentable(&l.v[1]));
	CHECK(!offer_plain_rentable(&l.v[2]) && !offer_plain_rentable(&l.v[3]));
	CHECK(!offer_plain_rentable(&l.v[4]) && offer_plain_rentable(&l.v[5]));
	CHECK(offer_in_stock(&l.v[6]) && !offer_in_stock(&l.v[2]));
	struct snap *s = snap_from_offers(&l);
	const struct gpu_type *h = snap_type(s, "H100_80GB");
	CHECK(h && type_cheapest(h) &&
	      !strcmp(type_cheapest(h)->provider, "g"));
	const struct gpu_type *a = snap_type(s, "A100_80GB");
	CHECK(a && !type_cheapest(a));
	snap_put(s);
}

static struct pod mkpod(const char *id, const char *name)
{
	struct pod p;
	memset(&p, 0, sizeof p);
	p.id = id ? xstrdup(id) : NULL;
	p.name = name ? xstrdup(name) : NULL;
	p.json = xstrdup("{}");
	p.created_t = -1;
	return p;
}

static void test_pods(void)
{
	struct pod_list l;
	l.n = 12;
	l.v = xcalloc(l.n, sizeof *l.v);
	l.v[0] = mkpod("c1", "bench");
	l.v[1] = mkpod("c2", "dup");
	l.v[2] = mkpod("c3", "dup");
	l.v[3] = mkpod("c4", "my pod");
	l.v[4] = mkpod("c5", "..");
	l.v[5] = mkpod("c6", NULL);
	l.v[6] = mkpod("c7", "c1");    /* a name that is another pod's id */
	l.v[7] = mkpod("c1", "bench"); /* the same id twice */
	l.v[8] = mkpod("bad/id", "evil");
	l.v[9] = mkpod(NULL, "noid");
	l.v[10] = mkpod("c8", ".hidden"); /* would never resolve: by id */
	l.v[11] = mkpod(".c9", "dotid");  /* an id that would be hidden */
	struct snap *s = snap_from_pods(&l, false);
	CHECK(s->pods.n == 8);
	const struct pod *p = snap_pod(s, "bench");
	CHECK(p && !strcmp(p->id, "c1") && !strcmp(p->dir, "bench"));
	CHECK(snap_pod(s, "c2") && !strcmp(snap_pod(s, "c2")->dir, "c2"));
	CHECK(snap_pod(s, "dup") == NULL);
	CHECK_STR(snap_pod(s, "c4")->dir, "c4");
	CHECK_STR(snap_pod(s, "c5")->dir, "c5");
	CHECK_STR(snap_pod(s, "c6")->dir, "c6");
	CHECK_STR(snap_pod(s, "c7")->dir, "c7");
	/* "c1" is both a pod's id and another pod's name: the id wins. */
	CHECK_STR(snap_pod(s, "c1")->name, "bench");
	CHECK(snap_pod(s, "evil") == NULL);
	CHECK_STR(snap_pod(s, "c8")->dir, "c8");
	CHECK(snap_pod(s, "dotid") == NULL && snap_pod(s, ".c9") == NULL);
	/* Listed once each, by unique names. */
	for (size_t i = 0; i < snap_n_pods(s); i++) {
		CHECK(safe_name(snap_pod_at(s, i)->dir));
		if (i)
			CHECK(strcmp(snap_pod_at(s, i - 1)->dir,
				     snap_pod_at(s, i)->dir) < 0);
	}
	snap_put(s);
}

int main(void)
{
	test_offers();
	test_many_twins();
	test_long_names();
	test_stable();
	test_indistinguishable();
	test_cheapest();
	test_pods();
	CHECK(gpu_type_dir(NULL) == NULL);
	char *d = gpu_type_dir("///");
	CHECK_STR(d, "_");
	free(d);
	/* An empty provider and nothing else known: still a name. */
	struct offer e = mk("", NULL, NULL, NULL, 1, NULL, -1);
	e.gpu_count.set = false;
	struct offer *pe = &e;
	name_offers(&pe, 1);
	CHECK_STR(e.name, "unknown");
	offer_free(&e);
	d = gpu_type_dir("RTX 3090_24GB");
	CHECK_STR(d, "RTX_3090_24GB");
	free(d);
	d = gpu_type_dir("..");
	CHECK_STR(d, "__");
	free(d);
	return t_done();
}
