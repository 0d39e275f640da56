/* test_model.c — JSON → model for every fixture, and hostile variants:
 * nulls everywhere, wrong types, huge strings. Nothing may crash and every
 * value must come out as the fixture says or as unset. */
#include <math.h>
#include <stdlib.h>

#include "api.h"
#include "cost.h"
#include "log.h"
#include "model.h"
#include "nodes.h"
#include "t.h"

static const char *dir;

static json_object *load(const char *rel)
{
	char path[1024];
	snprintf(path, sizeof path, "%s/%s", dir, rel);
	json_object *o = json_object_from_file(path);
	if (!o)
		printf("# cannot read %s\n", path);
	return o;
}

static const char *rendered(struct num n)
{
	static struct buf b;
	buf_free(&b);
	num_render(&b, n);
	return b.data ? b.data : "";
}

static void test_offers(void)
{
	json_object *o = load("availability_response.json");
	json_object *items = jx_arr(o, "items");
	CHECK(items && json_object_array_length(items) == 8);
	struct offer of;
	CHECK(offer_parse(json_object_array_get_idx(items, 0), false, &of) ==
	      0);
	CHECK_STR(of.cloud_id, "NVIDIA A100 80GB PCIe");
	CHECK_STR(of.gpu_type, "A100_80GB");
	CHECK_STR(of.provider, "runpod");
	CHECK_STR(of.data_center, "US-KS-2");
	CHECK_STR(of.stock, "Low");
	CHECK_STR(rendered(of.price), "1.6567999999999998");
	CHECK_STR(rendered(of.disk.def), "120");
	CHECK_STR(rendered(of.vcpu.def), "14");
	CHECK(of.is_spot == -1);
	CHECK(of.images.n == 17);
	/* The JSON text, deflated and given back as it was. */
	struct buf jb;
	buf_init(&jb);
	offer_json_text(&of, &jb);
	CHECK(jb.data && !strncmp(jb.data, "{\"cloudId\":", 11));
	CHECK(jb.len == of.json_len && jb.data[jb.len - 1] == '\n');
	CHECK(strlen(jb.data) == jb.len);
	CHECK(of.zjson_len < of.json_len / 4);
	char *plain = json_text(json_object_array_get_idx(items, 0));
	CHECK_STR(jb.data, plain);
	free(plain);
	buf_free(&jb);
	offer_free(&of);
	size_t n = json_object_array_length(items);
	size_t parsed = 0;
	for (size_t i = 0; i < n; i++) {
		if (offer_parse(json_object_array_get_idx(items, i), false,
				&of) == 0) {
			parsed++;
			CHECK(of.gpu_type != NULL);
			offer_free(&of);
		}
	}
	CHECK(parsed == n);
	json_object_put(o);

	/* Legacy: community offers carry only communityPrice. */
	o = load("legacy/availability_legacy_response.json");
	size_t total = 0, community_priced = 0;
	json_object_object_foreach(o, key, list)
	{
		(void)key;
		for (size_t i = 0; i < json_object_array_length(list); i++) {
			CHECK(offer_parse(json_object_array_get_idx(list, i),
					  false, &of) == 0);
			total++;
			if (of.security &&
			    !strcmp(of.security, "community_cloud"))
				community_priced += of.price.set;
			offer_free(&of);
		}
	}
	CHECK(total == 79);
	CHECK(community_priced > 0);
	json_object_put(o);

	o = load("from_tests/availability_item_minimal.json");
	CHECK(offer_parse(o, false, &of) == 0);
	offer_free(&of);
	json_object_put(o);
}

static void test_pods(void)
{
	json_object *o = load("synthetic/pods_list.json");
	json_object *data = jx_arr(o, "data");
	struct pod p;
	CHECK(pod_parse(json_object_array_get_idx(data, 0), false, &p) == 0);
	CHECK_STR(p.id, "cm9zq1x2a0001l508abcdefgh");
	CHECK_STR(p.gpu_type, "A100_80GB");
	CHECK_STR(pod_status(&p), "ACTIVE");
	CHECK(p.ssh.n == 1);
	CHECK_STR(p.ssh.v[0], "root@203.0.113.10 -p 22022");
	CHECK_STR(rendered(p.price_hr), "1.6568");
	CHECK(p.created_t == parse_iso8601("2026-05-01T12:00:00Z"));
	double cost;
	CHECK(pod_cost(&p, NULL, p.created_t + 7200, &cost) == 0);
	CHECK(cost > 3.3135 && cost < 3.3137);
	CHECK(pod_ready(&p));
	pod_free(&p);
	json_object_put(o);

	o = load("synthetic/pod_get_multinode.json");
	CHECK(pod_parse(o, false, &p) == 0);
	CHECK(p.ssh.n == 2 && p.ip.n == 2);
	CHECK_STR(p.ip.v[1], "198.51.100.22");
	CHECK(nodes_count(&p) == 2);
	struct buf env;
	buf_init(&env);
	nodes_env(&p, 1, &env);
	CHECK_STR(env.data, "export PRIME_NODE_RANK=1 PRIME_NUM_NODES=2 "
			    "PRIME_MASTER_ADDR='198.51.100.21' "
			    "PRIME_MASTER_PORT=29500\n");
	buf_free(&env);
	char *key = node_key(p.id, 1);
	CHECK_STR(key, "cm9zq1x2a0003l508abcdefgh-1");
	free(key);
	key = node_key(p.id, 0);
	CHECK_STR(key, p.id);
	free(key);
	pod_free(&p);
	json_object_put(o);

	o = load("synthetic/pod_get_stopped.json");
	CHECK(pod_parse(o, false, &p) == 0);
	/* [null]: one node with no connection (an empty line each) */
	CHECK(p.ssh.n == 1 && !*p.ssh.v[0] && p.ip.n == 1 && !*p.ip.v[0]);
	CHECK(!pod_ready(&p));
	CHECK_STR(pod_status(&p), "STOPPED");
	CHECK(pod_bills(&p)); /* a stopped pod bills (its stoppedPriceHr) */
	pod_free(&p);
	json_object_put(o);

	o = load("synthetic/pod_create_response.json");
	CHECK(pod_parse(o, false, &p) == 0);
	CHECK_STR(pod_status(&p), "PENDING");
	CHECK(pod_bills(&p) && !pod_ready(&p));
	pod_free(&p);
	json_object_put(o);

	o = load("synthetic/pod_get_active.json");
	CHECK(pod_parse(o, false, &p) == 0);
	CHECK(p.id != NULL);
	pod_free(&p);
	json_object_put(o);

	o = load("synthetic/pods_history.json");
	data = jx_arr(o, "data");
	CHECK(pod_parse(json_object_array_get_idx(data, 0), true, &p) == 0);
	CHECK_STR(pod_status(&p), "TERMINATED");
	CHECK(pod_cost(&p, NULL, time(NULL), &cost) == 0 && cost == 75.7904);
	pod_free(&p);
	json_object_put(o);

	o = load("synthetic/pods_status.json");
	data = jx_arr(o, "data");
	CHECK(pod_parse(json_object_array_get_idx(data, 0), false, &p) == 0);
	CHECK_STR(p.id, "cm9zq1x2a0001l508abcdefgh");
	pod_free(&p);
	json_object_put(o);
}

static void test_installing(void)
{
	json_object *o =
	    json_tokener_parse("{\"id\":\"x\",\"status\":\"ACTIVE\","
			       "\"installationStatus\":\"INSTALLING\","
			       "\"installationProgress\":40}");
	struct pod p;
	CHECK(pod_parse(o, false, &p) == 0);
	CHECK_STR(pod_status(&p), "INSTALLING");
	CHECK(!pod_ready(&p));
	CHECK_STR(rendered(p.progress), "40");
	pod_free(&p);
	json_object_put(o);
}

static void test_wallet(void)
{
	json_object *o = load("from_tests/billing_wallet.json");
	struct wallet w;
	CHECK(wallet_parse(o, &w) == 0);
	CHECK_STR(rendered(w.balance), "123.45");
	wallet_free(&w);
	json_object_put(o);
	o = load("from_tests/billing_wallet_empty.json");
	CHECK(wallet_parse(o, &w) == 0);
	wallet_free(&w);
	json_object_put(o);
}

/* Every key of an object replaced by each hostile value in turn. */
static void test_hostile(void)
{
	const char *values[] = {"null",
				"[]",
				"{}",
				"true",
				"-1",
				"1e308",
				"\"\"",
				"[null]",
				"[1,2]",
				"\"1.5\"",
				"\"x\\u0000y\\n\""};
	const char *sources[] = {"synthetic/pod_get_active.json",
				 "synthetic/pods_history.json",
				 "availability_response.json"};
	size_t survived = 0, tried = 0;
	for (size_t s = 0; s < 3; s++) {
		json_object *root = load(sources[s]);
		json_object *obj = root;
		json_object *arr = jx_arr(root, "items");
		if (!arr)
			arr = jx_arr(root, "data");
		if (arr)
			obj = json_object_array_get_idx(arr, 0);
		const char *text = json_object_to_json_string(obj);
		json_object *tmpl = json_tokener_parse(text);
		json_object_object_foreach(tmpl, key, val)
		{
			(void)val;
			for (size_t v = 0; v < sizeof values / sizeof *values;
			     v++) {
				json_object *copy = json_tokener_parse(text);
				json_object_object_add(
				    copy, key, json_tokener_parse(values[v]));
				struct offer of;
				struct pod p;
				tried++;
				if (offer_parse(copy, false, &of) == 0 &&
				    pod_parse(copy, s == 1, &p) == 0) {
					struct buf b;
					buf_init(&b);
					num_render(&b, p.price_hr);
					num_render(&b, of.price);
					double c;
					pod_cost(&p, NULL, time(NULL), &c);
					pod_status(&p);
					buf_free(&b);
					offer_free(&of);
					pod_free(&p);
					survived++;
				}
				json_object_put(copy);
			}
		}
		json_object_put(tmpl);
		json_object_put(root);
	}
	CHECK(tried > 100 && survived == tried);

	/* Not objects at all. */
	struct pod p;
	struct offer of;
	json_object *arr = json_tokener_parse("[1,2,3]");
	CHECK(pod_parse(arr, false, &p) == -1);
	CHECK(offer_parse(arr, false, &of) == -1);
	CHECK(pod_parse(NULL, false, &p) == -1);
	json_object_put(arr);

	/* A 1 MiB name survives and is kept whole. */
	struct buf big;
	buf_init(&big);
	buf_adds(&big, "{\"id\":\"x\",\"name\":\"");
	for (int i = 0; i < (1 << 20); i++)
		buf_addc(&big, 'a');
	buf_adds(&big, "\"}");
	json_object *o = json_tokener_parse(big.data);
	CHECK(pod_parse(o, false, &p) == 0 && strlen(p.name) == (1u << 20));
	pod_free(&p);
	json_object_put(o);
	buf_free(&big);

	/* Numbers as strings (pydantic lax mode) and ints as doubles. */
	o = json_tokener_parse("{\"id\":\"x\",\"gpuCount\":\"2\","
			       "\"priceHr\":\"1.5\",\"createdAt\":17}");
	CHECK(pod_parse(o, false, &p) == 0);
	CHECK_STR(rendered(p.gpu_count), "2");
	CHECK_STR(rendered(p.price_hr), "1.5");
	CHECK(p.created == NULL && p.created_t == -1);
	pod_free(&p);
	json_object_put(o);
}

static struct pod pod_of(const char *json)
{
	struct pod p;
	json_object *o = json_tokener_parse(json);
	if (pod_parse(o, false, &p) != 0)
		memset(&p, 0, sizeof p);
	json_object_put(o);
	return p;
}

/* DESIGN.md "Pods: status, cost": the states and what each costs. */
static void test_states_and_prices(void)
{
	struct pod p;
	const char *base = "{\"id\":\"p1\",\"priceHr\":2.5,"
			   "\"stoppedPriceHr\":0.05,"
			   "\"provisioningPriceHr\":%s,\"status\":\"%s\"%s}";
	char j[512];
	struct {
		const char *prov, *status, *extra, *shown, *price;
		bool billing;
	} cases[] = {
	    {"0.0", "PROVISIONING", "", "PROVISIONING", "0", true},
	    {"0.0", "PENDING", "", "PENDING", "0", true},
	    {"null", "PENDING", "", "PENDING", "2.5", true},
	    {"0.0", "ACTIVE", "", "ACTIVE", "2.5", true},
	    {"0.0", "ACTIVE", ",\"installationStatus\":\"ACTIVE\"",
	     "INSTALLING", "2.5", true},
	    {"0.0", "ACTIVE",
	     ",\"installationStatus\":\"ERROR\",\"installationFailure\":"
	     "\"Failed to pull image\"",
	     "INSTALL_FAILED", "2.5", true},
	    {"0.0", "STOPPED", "", "STOPPED", "0.05", true},
	    {"0.0", "ERROR", "", "ERROR", "0", false},
	    {"0.0", "UNKNOWN", "", "UNKNOWN", "2.5", false},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		snprintf(j, sizeof j, base, cases[i].prov, cases[i].status,
			 cases[i].extra);
		p = pod_of(j);
		CHECK_STR(pod_status(&p), cases[i].shown);
		CHECK_STR(rendered(pod_price(&p)), cases[i].price);
		CHECK(pod_bills(&p) == cases[i].billing);
		pod_free(&p);
	}
	/* stoppedPriceHr null: priceHr. */
	p = pod_of("{\"id\":\"p1\",\"priceHr\":2.5,\"status\":\"STOPPED\","
		   "\"stoppedPriceHr\":null}");
	CHECK_STR(rendered(pod_price(&p)), "2.5");
	pod_free(&p);
	/* The failure text is logged once, however often the pod is read. */
	log_init(100, false);
	for (int i = 0; i < 3; i++) {
		p = pod_of("{\"id\":\"pf\",\"name\":\"bad\",\"status\":"
			   "\"ACTIVE\",\"installationStatus\":\"ERROR\","
			   "\"installationFailure\":\"Failed to pull "
			   "image\"}");
		pod_free(&p);
	}
	struct buf lg;
	buf_init(&lg);
	log_render(&lg);
	const char *hit = strstr(lg.data ? lg.data : "", "Failed to pull");
	CHECK(hit && !strstr(hit + 1, "Failed to pull"));
	CHECK(strstr(lg.data ? lg.data : "", "/pods/bad") != NULL);
	buf_free(&lg);
	log_shutdown();
	/* DELETING and TERMINATED live pods are gone; history keeps them. */
	json_object *o = json_tokener_parse(
	    "{\"id\":\"g\",\"status\":\"DELETING\",\"priceHr\":1}");
	CHECK(pod_parse(o, false, &p) == 1);
	CHECK(pod_parse(o, true, &p) == 0);
	pod_free(&p);
	json_object_put(o);
	o = json_tokener_parse("{\"id\":\"g\",\"status\":\"TERMINATED\"}");
	CHECK(pod_parse(o, false, &p) == 1);
	json_object_put(o);
}

/* Node positions survive nulls: node 2 of 3 has no ssh yet. */
static void test_null_nodes(void)
{
	struct pod p =
	    pod_of("{\"id\":\"m\",\"status\":\"ACTIVE\","
		   "\"sshConnection\":[\"root@a -p 1\",null,\"root@c -p 3\"],"
		   "\"ip\":[null,\"10.0.0.2\"]}");
	CHECK(p.ssh.n == 3 && p.ip.n == 2);
	CHECK(p.ssh.n == 3 && !strcmp(p.ssh.v[1], "") &&
	      !strcmp(p.ssh.v[2], "root@c -p 3"));
	CHECK(p.ip.n == 2 && !strcmp(p.ip.v[0], "") &&
	      !strcmp(p.ip.v[1], "10.0.0.2"));
	CHECK(pod_ready(&p));
	pod_free(&p);
	p = pod_of("{\"id\":\"m\",\"status\":\"ACTIVE\","
		   "\"sshConnection\":[null,\"root@b -p 2\"]}");
	CHECK(p.ssh.n == 2 && !pod_ready(&p)); /* node 0 not reachable yet */
	pod_free(&p);
}

/* The pod's cost at `at` to 4 decimals, or "<rc N>" if pod_cost fails. */
static const char *cost_at(const struct pod *p, const struct wallet *w,
			   time_t at)
{
	static char out[64];
	double cost = -1;
	int rc = pod_cost(p, w, at, &cost);
	if (rc)
		snprintf(out, sizeof out, "<rc %d>", rc);
	else
		snprintf(out, sizeof out, "%.4f", cost);
	return out;
}

/* cost = billed rows of the pod + current price since the newest row's
 * last_billed_at (or since creation). */
static void test_cost(void)
{
	json_object *o = json_tokener_parse(
	    "{\"wallet_id\":\"w\",\"balance_usd\":10,\"currency\":\"USD\","
	    "\"total_billings\":4,\"recent_billings\":["
	    "{\"id\":\"1\",\"created_at\":\"2026-05-01T13:00:00Z\","
	    "\"updated_at\":\"2026-05-01T13:00:00Z\","
	    "\"last_billed_at\":\"2026-05-01T14:00:00Z\",\"amount_usd\":1.25,"
	    "\"currency\":\"USD\",\"resource_type\":\"compute\","
	    "\"resource_id\":\"p1\"},"
	    "{\"id\":\"2\",\"created_at\":\"2026-05-01T12:00:00Z\","
	    "\"updated_at\":\"2026-05-01T12:00:00Z\","
	    "\"last_billed_at\":\"2026-05-01T13:00:00Z\",\"amount_usd\":2.5,"
	    "\"currency\":\"USD\",\"resource_type\":\"compute\","
	    "\"resource_id\":\"p1\"},"
	    "{\"id\":\"3\",\"created_at\":\"2026-05-01T12:00:00Z\","
	    "\"updated_at\":\"2026-05-01T12:00:00Z\",\"last_billed_at\":null,"
	    "\"amount_usd\":7,\"currency\":\"USD\","
	    "\"resource_type\":\"compute\",\"resource_id\":\"p2\"},"
	    "{\"id\":\"4\",\"created_at\":\"2026-05-01T12:00:00Z\","
	    "\"updated_at\":\"2026-05-01T12:00:00Z\",\"amount_usd\":9,"
	    "\"currency\":\"USD\",\"resource_type\":\"disks\","
	    "\"resource_id\":null}]}");
	struct wallet w;
	CHECK(wallet_parse(o, &w) == 0);
	CHECK(w.n_rows == 3);
	json_object_put(o);
	time_t t14 = parse_iso8601("2026-05-01T14:00:00Z");
	/* STOPPED at 0.05/h, billed to 14:00: 3.75 + 2 h × 0.05. */
	struct pod p = pod_of(
	    "{\"id\":\"p1\",\"status\":\"STOPPED\",\"priceHr\":2.5,"
	    "\"stoppedPriceHr\":0.05,\"createdAt\":\"2026-05-01T11:00:00Z\"}");
	CHECK_STR(cost_at(&p, &w, t14 + 7200), "3.8500");
	/* No wallet: the stopped price × the time since creation. */
	CHECK_STR(cost_at(&p, NULL, t14 + 7200), "0.2500");
	pod_free(&p);
	/* A row with a null last_billed_at: running part since creation. */
	p = pod_of("{\"id\":\"p2\",\"status\":\"ACTIVE\",\"priceHr\":1,"
		   "\"createdAt\":\"2026-05-01T12:00:00Z\"}");
	CHECK_STR(cost_at(&p, &w, t14), "9.0000");
	pod_free(&p);
	/* ERROR costs nothing more than its rows. */
	p = pod_of("{\"id\":\"p1\",\"status\":\"ERROR\",\"priceHr\":2.5,"
		   "\"createdAt\":\"2026-05-01T11:00:00Z\"}");
	CHECK_STR(cost_at(&p, &w, t14 + 36000), "3.7500");
	pod_free(&p);

	/* Never lower than what is known (cost.h): with rows unread back to
	 * after the pod's creation, at least priceHr × hours since creation;
	 * a pod created after the unread part has all its rows. */
	p = pod_of(
	    "{\"id\":\"p1\",\"status\":\"STOPPED\",\"priceHr\":2.5,"
	    "\"stoppedPriceHr\":0.05,\"createdAt\":\"2026-05-01T11:00:00Z\"}");
	double c = -1;
	bool est = true;
	CHECK(cost_of_pod(&p, &w, t14 + 7200, &c, &est) == 0 && !est &&
	      fabs(c - 3.85) < 1e-9);
	w.unread_until = t14 - 3600; /* 13:00: the pod's rows may be missing */
	CHECK(cost_of_pod(&p, &w, t14 + 7200, &c, &est) == 0 && est &&
	      fabs(c - 2.5 * 5) < 1e-9); /* 11:00 to 16:00 at priceHr */
	CHECK(cost_of_pod(&p, NULL, t14 + 7200, &c, &est) == 0 && est &&
	      fabs(c - 12.5) < 1e-9); /* no wallet at all */
	w.unread_until = p.created_t - 1;
	CHECK(cost_of_pod(&p, &w, t14 + 7200, &c, &est) == 0 && !est &&
	      fabs(c - 3.85) < 1e-9);
	pod_free(&p);
	/* ERROR does not bill: its rows, no lower bound. */
	w.unread_until = t14;
	p = pod_of("{\"id\":\"p1\",\"status\":\"ERROR\",\"priceHr\":2.5,"
		   "\"createdAt\":\"2026-05-01T11:00:00Z\"}");
	CHECK(cost_of_pod(&p, &w, t14 + 36000, &c, &est) == 0 && !est &&
	      fabs(c - 3.75) < 1e-9);
	pod_free(&p);
	wallet_free(&w);
}

/* History rows: pods are Instance and Cluster rows; cost is the billed
 * total. A pod fits an offer by its fields; unknown ones tell nothing. */
static void test_history_and_origin(void)
{
	const char *rows[][2] = {
	    {"{\"type\":\"Instance\"}", "1"},
	    {"{\"type\":\"Cluster\"}", "1"},
	    {"{\"type\":\"instance\"}", "1"},
	    {"{\"type\":\"Disk\"}", "0"},
	    {"{\"type\":\"Sandbox\"}", "0"},
	    {"{\"type\":\"Image\"}", "0"},
	    {"{\"type\":null}", "0"},
	    {"{}", "0"},
	    {"{\"type\":1}", "0"},
	    {"[]", "0"},
	};
	for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
		json_object *o = json_tokener_parse(rows[i][0]);
		CHECK(history_row_is_pod(o) == (rows[i][1][0] == '1'));
		json_object_put(o);
	}
	CHECK(!history_row_is_pod(NULL));

	json_object *o = json_tokener_parse(
	    "{\"id\":\"h1\",\"type\":\"Instance\",\"totalBilledPrice\":12.5,"
	    "\"priceHr\":2}");
	struct pod p;
	CHECK(pod_parse(o, true, &p) == 0);
	double cost = -1;
	CHECK(pod_cost(&p, NULL, time(NULL), &cost) == 0 && cost == 12.5);
	pod_free(&p);
	json_object_put(o);

	o = json_tokener_parse(
	    "{\"id\":\"p\",\"gpuName\":\"A100_80GB\",\"gpuCount\":1,"
	    "\"providerType\":\"runpod\",\"socket\":\"PCIe\",\"isSpot\":false,"
	    "\"dataCenterId\":\"US-KS-2\",\"resources\":{\"vcpus\":14}}");
	CHECK(pod_parse(o, false, &p) == 0);
	json_object_put(o);
	struct pod_origin po;
	pod_origin_read(&p, &po);
	CHECK_STR(po.data_center, "US-KS-2");
	CHECK(po.is_spot == 0 && po.vcpus.set && po.vcpus.i == 14);
	CHECK(po.cloud_id == NULL && !po.memory.set);
	const char *offers[][2] = {
	    {"{\"gpuType\":\"A100_80GB\",\"gpuCount\":1,\"provider\":"
	     "\"runpod\","
	     "\"socket\":\"PCIe\",\"dataCenter\":\"US-KS-2\"}",
	     "1"},
	    {"{\"gpuType\":\"A100_80GB\",\"gpuCount\":1,\"provider\":"
	     "\"runpod\","
	     "\"socket\":\"PCIe\",\"dataCenter\":\"CA-MTL-1\"}",
	     "0"},
	    {"{\"gpuType\":\"A100_80GB\",\"gpuCount\":2,\"provider\":"
	     "\"runpod\","
	     "\"socket\":\"PCIe\"}",
	     "0"},
	    {"{\"gpuType\":\"H100_80GB\",\"gpuCount\":1,\"provider\":"
	     "\"runpod\","
	     "\"socket\":\"PCIe\"}",
	     "0"},
	    {"{\"gpuType\":\"A100_80GB\",\"gpuCount\":1,\"provider\":"
	     "\"runpod\","
	     "\"socket\":\"PCIe\",\"isSpot\":true}",
	     "0"},
	    {"{\"gpuType\":\"A100_80GB\",\"gpuCount\":1,\"provider\":"
	     "\"lambda\"}",
	     "0"},
	    {"{\"gpuType\":\"A100_80GB\"}", "1"}, /* nothing tells them apart */
	};
	for (size_t i = 0; i < sizeof offers / sizeof *offers; i++) {
		struct offer of;
		o = json_tokener_parse(offers[i][0]);
		CHECK(offer_parse(o, false, &of) == 0);
		CHECK(offer_fits_pod(&of, &p, &po) == (offers[i][1][0] == '1'));
		json_object_put(o);
		offer_free(&of);
	}
	struct offer of;
	o = json_tokener_parse("{\"vcpu\":{\"defaultCount\":14}}");
	offer_parse(o, false, &of);
	CHECK(offer_resources_fit(&of, &po));
	json_object_put(o);
	offer_free(&of);
	o = json_tokener_parse("{\"vcpu\":{\"defaultCount\":8}}");
	offer_parse(o, false, &of);
	CHECK(!offer_resources_fit(&of, &po));
	json_object_put(o);
	offer_free(&of);
	pod_origin_free(&po);
	pod_free(&p);
}

int main(int argc, char **argv)
{
	dir = argc > 1 ? argv[1] : "tests/fixtures";
	test_states_and_prices();
	test_null_nodes();
	test_cost();
	test_offers();
	test_pods();
	test_installing();
	test_wallet();
	test_hostile();
	test_history_and_origin();
	return t_done();
}
