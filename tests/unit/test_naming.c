/* test_naming.c — offer and pod names: unique, stable whatever the API's
 * order, [A-Za-z0-9._-] only, and DESIGN.md's pod rules. */
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
	o.provider = provider ? xstrdup(provider) : NULL;
	o.data_center = dc ? xstrdup(dc) : NULL;
	o.country = country ? xstrdup(country) : NULL;
	o.socket = socket ? xstrdup(socket) : NULL;
	o.security = security ? xstrdup(security) : NULL;
	o.gpu_type = xstrdup("H100_80GB");
	o.gpu_count.set = o.gpu_count.integral = true;
	o.gpu_count.i = count;
	o.is_spot = spot;
	o.json = xstrdup("{}");
	return o;
}

static bool name_ok(const char *s)
{
	return safe_name(s) && s[0] != '.';
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
	free(a[7].json);
	a[7].json = xstrdup("{\"x\":1}");
	free(b[7].json);
	b[7].json = xstrdup("{\"x\":1}");
	name_offers(pa, N_OFFERS);
	name_offers(pb, N_OFFERS);
	CHECK_STR(a[0].name, "runpod-US-KS-2-PCIe-1x");
	CHECK_STR(a[1].name, "runpod-CA-SXM5-8x");
	CHECK_STR(a[2].name, "runpod-PCIe-4x-secure");
	CHECK_STR(a[3].name, "runpod-PCIe-4x-community");
	CHECK_STR(a[4].name, "hyperstack-CANADA-1-SXM5-8x-spot");
	CHECK_STR(a[5].name, "hyperstack-CANADA-1-SXM5-8x");
	CHECK(!strcmp(a[6].name, "lambda-us-west-SXM5-1x") ||
	      !strcmp(a[6].name, "lambda-us-west-SXM5-1x-2"));
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
		free(v[i].json);
		char j[32];
		snprintf(j, sizeof j, "{\"n\":%d}", i);
		v[i].json = xstrdup(j);
		p[i] = &v[i];
	}
	/* An offer whose base name is what the second twin would get. */
	v[N] = mk("p", "dc", NULL, NULL, 1, NULL, -1);
	free(v[N].data_center);
	v[N].data_center = NULL;
	free(v[N].provider);
	v[N].provider = xstrdup("p-dc-1x");
	v[N].gpu_count.set = false;
	free(v[N].json);
	v[N].json = xstrdup("{}");
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
	/* No offer is named like the type directory's link. */
	struct offer link = mk("cheapest", NULL, NULL, NULL, 1, NULL, -1);
	link.gpu_count.set = false;
	struct offer *plink = &link;
	name_offers(&plink, 1);
	CHECK_STR(link.name, "cheapest-2");
	offer_free(&link);
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
	for (size_t i = 0; i < s->pods.n; i++) {
		CHECK(safe_name(s->by_dir[i]->dir));
		if (i)
			CHECK(strcmp(s->by_dir[i - 1]->dir, s->by_dir[i]->dir) <
			      0);
	}
	snap_put(s);
}

int main(void)
{
	test_offers();
	test_many_twins();
	test_long_names();
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
