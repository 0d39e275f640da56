/* test_cache.c — the tree over installed snapshots: every kind of node,
 * rendering rules (one value and a newline, empty for unknown, 4-decimal
 * cost), the cheapest link, and probe names answered without a fetch. */
#include <errno.h>
#include <stdlib.h>

#include "log.h"
#include "t.h"
#include "template.h"
#include "tree.h"

static const char *dir;

static json_object *load(const char *rel)
{
	char path[1024];
	snprintf(path, sizeof path, "%s/%s", dir, rel);
	return json_object_from_file(path);
}

static struct tree *tree;

static const char *cat(const char *path)
{
	static struct buf b;
	buf_free(&b);
	struct node n;
	int rc = tree_resolve(tree, path, &n);
	if (rc) {
		buf_printf(&b, "<errno %d>", -rc);
		return b.data;
	}
	if (n.type == N_LINK)
		rc = tree_readlink(tree, &n, &b);
	else
		rc = tree_render(tree, &n, &b);
	node_release(&n);
	if (rc)
		buf_printf(&b, "<errno %d>", -rc);
	return b.data ? b.data : "";
}

static int count_add(void *ctx, const char *name)
{
	(void)name;
	(*(int *)ctx)++;
	return 0;
}

static int list_count(const char *path)
{
	struct node n;
	int count = 0;
	if (tree_resolve(tree, path, &n))
		return -1;
	int rc = tree_list(tree, &n, count_add, &count);
	node_release(&n);
	return rc ? rc : count;
}

int main(int argc, char **argv)
{
	dir = argc > 1 ? argv[1] : "tests/fixtures";
	log_init(100, false);
	/* An API nobody answers: any fetch fails with EIO, so a probe that
	 * comes back ENOENT proves it did not fetch. */
	struct http_opts ho = {
	    .base_url = "http://127.0.0.1:1", .api_key = "k", .timeout = 2};
	struct http_client *http = http_new(&ho);
	struct api api = {.http = http};
	double ttl[SNAP_KINDS] = {1e9, 1e9, 1e9, 1e9};
	struct cache *cache = cache_new(&api, ttl);
	struct template_store tmpl;
	template_store_init(&tmpl, "/nonexistent/config");
	struct tree_opts to = {.cache = cache, .tmpl = &tmpl};
	tree = tree_new(&to);

	CHECK_STR(cat("/pods/HEAD"), "<errno 2>");
	CHECK_STR(cat("/pods/.git"), "<errno 2>");
	CHECK_STR(cat("/availability/.DS_Store"), "<errno 2>");
	CHECK_STR(cat("/pods/bench"), "<errno 5>"); /* a real miss fetches */

	/* Offers: the recorded page plus the legacy set. */
	json_object *page = load("availability_response.json");
	json_object *items = jx_arr(page, "items");
	struct offer_list ol = {xcalloc(8, sizeof(struct offer)), 0};
	for (size_t i = 0; i < json_object_array_length(items); i++)
		if (!offer_parse(json_object_array_get_idx(items, i), false,
				 &ol.v[ol.n]))
			ol.n++;
	json_object_put(page);
	cache_install(cache, snap_from_offers(&ol));

	CHECK(list_count("/availability") >= 1);
	CHECK_STR(cat("/availability/A100_80GB/runpod-US-KS-2-PCIe-1x/price"),
		  "1.6567999999999998\n");
	CHECK_STR(cat("/availability/A100_80GB/runpod-US-KS-2-PCIe-1x/disk"),
		  "120\n");
	CHECK_STR(cat("/availability/A100_80GB/runpod-US-KS-2-PCIe-1x/spot"),
		  "\n");
	CHECK_STR(cat("/availability/A100_80GB/runpod-US-KS-2-PCIe-1x/region"),
		  "united_states\n");
	CHECK(strncmp(cat("/availability/A100_80GB/runpod-US-KS-2-PCIe-1x/"
			  "images"),
		      "ubuntu_22_cuda_12\ncuda_12_1_pytorch_2_2\n", 40) == 0);
	CHECK_STR(cat("/availability/A100_80GB/nope"), "<errno 2>");
	CHECK_STR(cat("/availability/NOPE"), "<errno 2>");
	CHECK_STR(cat("/availability/A100_80GB/runpod-US-KS-2-PCIe-1x/nope"),
		  "<errno 2>");
	const char *cheapest = cat("/availability/A100_80GB/cheapest");
	CHECK(cheapest[0] != '<');
	/* The link's target is the cheapest priced offer of the type. */
	struct node n;
	CHECK(tree_resolve(tree, "/availability/A100_80GB", &n) == 0);
	double best = 1e300;
	for (size_t i = 0; i < n.gtype->n; i++)
		if (n.gtype->offers[i]->price.set &&
		    n.gtype->offers[i]->price.d < best)
			best = n.gtype->offers[i]->price.d;
	CHECK(n.gtype->cheapest && n.gtype->cheapest->price.d == best);
	node_release(&n);

	/* Pods. */
	json_object *pl = load("synthetic/pods_list.json");
	json_object *data = jx_arr(pl, "data");
	struct pod_list pods = {xcalloc(4, sizeof(struct pod)), 0};
	for (size_t i = 0; i < json_object_array_length(data); i++)
		if (!pod_parse(json_object_array_get_idx(data, i), false,
			       &pods.v[pods.n]))
			pods.n++;
	json_object *stopped = load("synthetic/pod_get_stopped.json");
	pod_parse(stopped, false, &pods.v[pods.n++]);
	json_object_put(stopped);
	json_object_put(pl);
	cache_install(cache, snap_from_pods(&pods, false));

	CHECK(list_count("/pods") == 3); /* the duplicated id listed once */
	CHECK_STR(cat("/pods/a100-1/status"), "ACTIVE\n");
	CHECK_STR(cat("/pods/cm9zq1x2a0001l508abcdefgh/name"), "a100-1\n");
	CHECK_STR(cat("/pods/h100-16/ssh"),
		  "root@198.51.100.21 -p 22\nroot@198.51.100.22 -p 22\n");
	CHECK_STR(cat("/pods/a40-1/ssh"), "\n");
	CHECK_STR(cat("/pods/a40-1/ip"), "\n");
	CHECK_STR(cat("/pods/a100-1/price"), "1.6568\n");
	CHECK_STR(cat("/pods/a100-1/image"), "ubuntu_22_cuda_12\n");
	const char *cost = cat("/pods/a100-1/cost");
	CHECK(strlen(cost) > 6 && cost[strlen(cost) - 6] == '.');
	CHECK_STR(cat("/pods/a100-1/created"), "2026-05-01T12:00:00.000Z\n");
	CHECK_STR(cat("/pods/a100-1/nope"), "<errno 2>");
	CHECK_STR(cat("/pods/a100-1/status/x"), "<errno 20>");
	CHECK_STR(cat("/pods/HEAD"), "<errno 2>");

	/* History: billed total, by name when unique, by id always. */
	json_object *hl = load("synthetic/pods_history.json");
	data = jx_arr(hl, "data");
	struct pod_list hist = {xcalloc(2, sizeof(struct pod)), 0};
	for (size_t i = 0; i < json_object_array_length(data); i++)
		if (!pod_parse(json_object_array_get_idx(data, i), true,
			       &hist.v[hist.n]))
			hist.n++;
	json_object_put(hl);
	cache_install(cache, snap_from_pods(&hist, true));
	CHECK(list_count("/history") == 2);
	CHECK_STR(cat("/history/cm9yy0000001l508abcdefgh/cost"), "75.7904\n");
	CHECK_STR(cat("/history/cm9yy0000002l508abcdefgh/cost"), "0.0000\n");
	CHECK_STR(cat("/history/cm9yy0000001l508abcdefgh/status"),
		  "TERMINATED\n");
	CHECK_STR(cat("/history/h100-8/cost"), "75.7904\n");
	CHECK_STR(cat("/history/a100-1/id"), "cm9yy0000002l508abcdefgh\n");
	CHECK_STR(cat("/history/a100-1/run"), "<errno 2>");
	CHECK_STR(cat("/history/a100-1/exit"), "<errno 2>");
	CHECK_STR(cat("/history/a100-1/log"), ""); /* no podlog: empty */

	/* A pod terminated here shows in history at once, with its data. */
	CHECK_STR(cat("/history/a40-1/id"), "<errno 2>");
	cache_history_add(cache, "cm9zq1x2a0004l508abcdefgh");
	cache_pods_change(cache, NULL, "cm9zq1x2a0004l508abcdefgh");
	CHECK_STR(cat("/pods/a40-1/id"), "<errno 2>");
	CHECK(list_count("/history") == 3);
	CHECK_STR(cat("/history/a40-1/status"), "TERMINATED\n");
	CHECK_STR(cat("/history/cm9zq1x2a0004l508abcdefgh/gpu_type"),
		  "A40_48GB\n");
	CHECK_STR(cat("/history/a100-1/cost"), "0.0000\n");
	cache_history_add(cache, "no-such-pod"); /* nothing to add */
	CHECK(list_count("/history") == 3);

	/* Root. */
	CHECK(list_count("/") == 8);
	CHECK_STR(cat("/config"), "");
	CHECK_STR(cat("/nope"), "<errno 2>");
	CHECK(strstr(cat("/stats"), "cache_hits") != NULL);

	tree_free(tree);
	template_store_destroy(&tmpl);
	cache_free(cache);
	http_free(http);
	log_shutdown();
	return t_done();
}
