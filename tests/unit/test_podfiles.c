/* test_podfiles.c — podfiles.h without a mount or a pod: which paths are a
 * pod's files, and the symlink rule (an absolute target read as a relative
 * path inside the same pod's .fs). */
#include <string.h>

#include "podfiles.h"
#include "t.h"

static void target_is(const char *path, const char *target, const char *want)
{
	struct podpath pp;
	CHECK(podfiles_split(path, &pp));
	struct buf b;
	buf_init(&b);
	podfiles_link_target(&pp, target, &b);
	CHECK_STR(b.data, want);
	buf_free(&b);
}

int main(void)
{
	struct podpath pp;
	CHECK(podfiles_split("/pods/x/.fs", &pp) && !pp.home &&
	      !strcmp(pp.pod, "x") && !*pp.rest && pp.depth == 0);
	CHECK(podfiles_split("/pods/x/.home/a/b", &pp) && pp.home &&
	      !strcmp(pp.rest, "/a/b") && pp.depth == 2);
	CHECK(!podfiles_split("/pods/x/fs", &pp));
	CHECK(!podfiles_split("/pods/x", &pp));
	CHECK(!podfiles_split("/history/x/.fs", &pp));
	CHECK(!podfiles_split("/pods/x/.fsx", &pp));
	bool link;
	CHECK(!strcmp(podfiles_root_of("fs", &link), ".fs") && link);
	CHECK(!strcmp(podfiles_root_of(".home", &link), ".home") && !link);
	CHECK(podfiles_root_of("status", &link) == NULL);

	target_is("/pods/x/.home/l", "rel/x", "rel/x");
	target_is("/pods/x/.home/l", "/data/x", "../.fs/data/x");
	target_is("/pods/x/.home/a/b/l", "/data/x", "../../../.fs/data/x");
	target_is("/pods/x/.fs/l", "/data/x", "data/x");
	target_is("/pods/x/.fs/a/l", "//data", "../data");
	target_is("/pods/x/.fs/l", "/", ".");
	target_is("/pods/x/.fs/a/b/l", "/", "../..");
	return t_done();
}
