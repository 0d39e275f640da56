/* test_inodes.c — the inode table without a mount: entries added and
 * found by parent and name, paths rebuilt by walking parents, counts that
 * go down with FORGET and free entries (parents last), numbers reused
 * only once freed and then with a new generation. */
#include <stdlib.h>

#include "inodes.h"
#include "t.h"

static void path_is(struct inodes *t, uint64_t ino, const char *want)
{
	struct buf b;
	buf_init(&b);
	bool ok = inodes_path(t, ino, &b);
	CHECK(ok);
	CHECK_STR(b.data, want);
	buf_free(&b);
}

int main(void)
{
	struct inodes *t = inodes_new();
	CHECK(inodes_count(t) == 1);
	path_is(t, INODES_ROOT, "/");

	uint64_t g1, g2;
	bool added;
	uint64_t pods = inodes_ref(t, INODES_ROOT, "pods", &g1, &added);
	CHECK(pods > INODES_ROOT && added);
	uint64_t again = inodes_ref(t, INODES_ROOT, "pods", &g2, &added);
	CHECK(again == pods && !added && g2 == g1);
	uint64_t demo = inodes_ref(t, pods, "demo", NULL, &added);
	uint64_t status = inodes_ref(t, demo, "status", NULL, &added);
	CHECK(demo && status && added);
	CHECK(inodes_count(t) == 4);
	CHECK(inodes_find(t, pods, "demo") == demo);
	CHECK(inodes_find(t, pods, "other") == 0);
	CHECK(inodes_find(t, demo, "demo") == 0);
	path_is(t, status, "/pods/demo/status");
	uint64_t parent = 99;
	CHECK(inodes_walk(t, "/pods/demo/status", &parent) == status);
	CHECK(parent == demo);
	CHECK(inodes_walk(t, "/pods", &parent) == pods &&
	      parent == INODES_ROOT);
	CHECK(inodes_walk(t, "/pods/nope/status", &parent) == 0 && !parent);
	CHECK(inodes_ref(t, 12345, "x", NULL, NULL) == 0);

	/* pods has two lookups and a child: forgetting its lookups keeps it
	 * while demo (and so status) is held. */
	CHECK(inodes_forget(t, pods, 2) == 0);
	CHECK(inodes_find(t, INODES_ROOT, "pods") == pods);
	CHECK(inodes_forget(t, demo, 1) == 0); /* status holds it */
	path_is(t, status, "/pods/demo/status");
	/* The last one: status, then demo, then pods go. */
	CHECK(inodes_forget(t, status, 1) == 3);
	CHECK(inodes_count(t) == 1);
	CHECK(inodes_find(t, INODES_ROOT, "pods") == 0);
	struct buf b;
	buf_init(&b);
	CHECK(!inodes_path(t, status, &b) && b.len == 0);
	CHECK(inodes_gen(t, status) == 0);
	CHECK(inodes_forget(t, status, 1) == 0); /* unknown: nothing */
	CHECK(inodes_forget(t, INODES_ROOT, 1) == 0);
	CHECK(inodes_count(t) == 1);

	/* A freed number comes back with a new generation. */
	uint64_t g;
	uint64_t n = inodes_ref(t, INODES_ROOT, "history", &g, &added);
	CHECK(added && (n == pods || n == demo || n == status));
	CHECK(n != pods || g != g1);
	CHECK(g >= 1);

	/* Many names: the hash grows, every one is found, all freed. */
	uint64_t *v = calloc(20000, sizeof *v);
	for (int i = 0; i < 20000; i++) {
		char name[32];
		snprintf(name, sizeof name, "offer-%d", i);
		v[i] = inodes_ref(t, n, name, NULL, NULL);
	}
	CHECK(inodes_count(t) == 20002);
	bool all = true;
	for (int i = 0; i < 20000; i++) {
		char name[32];
		snprintf(name, sizeof name, "offer-%d", i);
		all = all && inodes_find(t, n, name) == v[i];
	}
	CHECK(all);
	size_t freed = 0;
	for (int i = 0; i < 20000; i++)
		freed += inodes_forget(t, v[i], 1);
	CHECK(freed == 20000);
	CHECK(inodes_count(t) == 2);
	CHECK(inodes_forget(t, n, 1) == 1);
	CHECK(inodes_count(t) == 1);
	free(v);
	buf_free(&b);

	/* rename moves an entry (its children follow) and detaches one it
	 * replaces; unlink detaches: no path, a new number for the name. */
	uint64_t ma = inodes_ref(t, INODES_ROOT, "a", NULL, NULL);
	uint64_t mf = inodes_ref(t, ma, "f", NULL, NULL);
	uint64_t mc = inodes_ref(t, mf, "c", NULL, NULL);
	uint64_t mg = inodes_ref(t, ma, "g", NULL, NULL);
	CHECK(inodes_move(t, ma, "f", ma, "g"));
	path_is(t, mc, "/a/g/c");
	CHECK(inodes_find(t, ma, "g") == mf && inodes_find(t, ma, "f") == 0);
	struct buf none;
	buf_init(&none);
	CHECK(!inodes_path(t, mg, &none) && none.len == 0);
	CHECK(inodes_move(t, ma, "g", INODES_ROOT, "top"));
	path_is(t, mc, "/top/c");
	inodes_detach(t, INODES_ROOT, "top");
	CHECK(!inodes_path(t, mc, &none));
	uint64_t mtop = inodes_ref(t, INODES_ROOT, "top", NULL, &added);
	CHECK(added && mtop != mf);
	buf_free(&none);
	inodes_free(t);
	return t_done();
}
