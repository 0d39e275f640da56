/* test_intent.c — which mkdirs rent: the decision from synthetic callers
 * (name, raw command line with its NULs, working directory), and the
 * after-the-fact rule with real processes (this one and a child). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "intent.h"
#include "t.h"

/* A mount point that does not exist: nothing under it is ever looked at. */
#define MNT "/nonexistent-primefs-test/mnt"

static char why_text[1024];

/* cmdline as a C literal: "mkdir\0-p\0pods/a\0b" (the final NUL added). */
static enum intent decide_len(const char *comm, const char *cmd, size_t len,
			      const char *cwd, const char *path)
{
	struct intent_caller c = {.tgid = 4242,
				  .comm = (char *)comm,
				  .cmdline = (char *)cmd,
				  .cmdline_len = len + 1,
				  .cwd = (char *)cwd};
	struct buf why;
	buf_init(&why);
	enum intent r = intent_decide(&c, MNT, path, &why);
	snprintf(why_text, sizeof why_text, "%s", why.data ? why.data : "");
	buf_free(&why);
	return r;
}

#define DECIDE(comm, cmd, cwd, path)                                           \
	decide_len(comm, cmd, sizeof cmd - 1, cwd, path)
#define RENTS(comm, cmd, cwd, path)                                            \
	(DECIDE(comm, cmd, cwd, path) == INTENT_DELIBERATE)
#define REFUSES(comm, cmd, cwd, path)                                          \
	(DECIDE(comm, cmd, cwd, path) == INTENT_INCIDENTAL && why_text[0])

static void test_mkdir(void)
{
	/* mkdir pods/x from the mount point: no chdir. */
	CHECK(RENTS("mkdir", "mkdir\0pods/x", MNT, "/pods/x"));
	CHECK(RENTS("mkdir", "mkdir\0x", MNT "/pods", "/pods/x"));
	CHECK(RENTS("mkdir", "mkdir\0" MNT "/pods/x", "/", "/pods/x"));
	CHECK(
	    RENTS("mkdir", "mkdir\0../pods/x", MNT "/availability", "/pods/x"));
	CHECK(RENTS("mkdir", "mkdir\0./pods//x/", MNT, "/pods/x"));
	CHECK(RENTS("mkdir", "mkdir\0--\0pods/x", MNT, "/pods/x"));
	CHECK(RENTS("mkdir",
		    "mkdir\0-m\0"
		    "755\0pods/x",
		    MNT, "/pods/x"));
	CHECK(RENTS("mkdir",
		    "mkdir\0--mode\0"
		    "755\0pods/x",
		    MNT, "/pods/x"));
	/* Not an operand. */
	CHECK(REFUSES("mkdir", "mkdir\0pods/y", MNT, "/pods/x"));
	CHECK(REFUSES("mkdir", "mkdir\0/elsewhere/pods/x", MNT, "/pods/x"));
	CHECK(REFUSES("mkdir", "mkdir\0-m\0pods/x", MNT, "/pods/x"));
	/* Two operands, no -p: nothing is written into them. */
	CHECK(RENTS("mkdir", "mkdir\0pods/x\0pods/y", MNT, "/pods/x"));
	CHECK(RENTS("mkdir", "mkdir\0pods/x\0pods/y", MNT, "/pods/y"));
}

static void test_mkdir_parents(void)
{
	/* mkdir -p pods/x: it chdirs into pods, then makes "x". */
	CHECK(RENTS("mkdir", "mkdir\0-p\0pods/x", MNT "/pods", "/pods/x"));
	CHECK(
	    RENTS("mkdir", "mkdir\0--parents\0pods/x", MNT "/pods", "/pods/x"));
	CHECK(RENTS("mkdir", "mkdir\0-pv\0pods/x/", MNT "/pods", "/pods/x"));
	CHECK(RENTS("mkdir", "mkdir\0-p\0" MNT "/pods/x", MNT "/pods",
		    "/pods/x"));
	/* From inside pods, and through a path outside the mount that
	 * cannot be checked (a symlink to the mount, say). */
	CHECK(RENTS("mkdir", "mkdir\0-p\0x", MNT "/pods", "/pods/x"));
	CHECK(RENTS("mkdir", "mkdir\0-p\0gpu/pods/x", MNT "/pods", "/pods/x"));
	CHECK(RENTS("mkdir",
		    "mkdir\0-p\0pods/x\0-m\0"
		    "700",
		    MNT "/pods", "/pods/x"));
	/* mkdir -p pods/a/b making pods/a: the NUL over the slash. */
	CHECK(REFUSES("mkdir", "mkdir\0-p\0pods/a\0b", MNT "/pods", "/pods/a"));
	CHECK(strstr(why_text, "pods/a/b") != NULL);
	CHECK(
	    REFUSES("mkdir", "mkdir\0-p\0pods/a\0b/c", MNT "/pods", "/pods/a"));
	CHECK(REFUSES("mkdir", "mkdir\0-p\0" MNT "/pods/a\0b", MNT "/pods",
		      "/pods/a"));
	/* ... and the same with the slash back. */
	CHECK(REFUSES("mkdir", "mkdir\0-p\0pods/a/b", MNT "/pods", "/pods/a"));
	CHECK(strstr(why_text, "operands") != NULL);
	/* Ambiguous: -p with pods/x then pods/y could be pods/x/pods/y. */
	CHECK(REFUSES("mkdir", "mkdir\0-p\0pods/x\0pods/y", MNT "/pods",
		      "/pods/x"));
	CHECK(RENTS("mkdir", "mkdir\0-p\0pods/x\0pods/y", MNT "/pods",
		    "/pods/y"));
	/* With the working directory elsewhere, "pods/x" is not mnt's. */
	CHECK(REFUSES("mkdir", "mkdir\0-p\0pods/x", "/tmp", "/pods/x"));
	CHECK(REFUSES("mkdir", "mkdir\0-p\0../pods/x", MNT "/history/h",
		      "/pods/x"));
	/* ".." against the working directory itself still leads there. */
	CHECK(RENTS("mkdir", "mkdir\0-p\0../pods/x", MNT "/pods", "/pods/x"));
	/* Busybox, or a path to mkdir: argv[0]'s base name counts too. */
	CHECK(REFUSES("busybox", "/bin/mkdir\0-p\0pods/a\0b", MNT "/pods",
		      "/pods/a"));
}

static void test_install(void)
{
	CHECK(RENTS("install", "install\0-d\0pods/y", MNT "/pods", "/pods/y"));
	CHECK(RENTS("install",
		    "install\0-d\0-m\0"
		    "755\0pods/y",
		    MNT "/pods", "/pods/y"));
	CHECK(RENTS("install", "install\0-d\0pods/y", MNT, "/pods/y"));
	/* install -d pods/a/b making pods/a. */
	CHECK(REFUSES("install", "install\0-d\0pods/a\0b", MNT "/pods",
		      "/pods/a"));
	CHECK(REFUSES("install", "install\0-d\0pods/a/b", MNT "/pods",
		      "/pods/a"));
	/* install -D f pods/x/f makes pods/x on its way. */
	CHECK(REFUSES("install", "install\0-D\0f\0pods/x\0f", MNT "/pods",
		      "/pods/x"));
	CHECK(REFUSES("install", "install\0-D\0f\0pods/x/f", MNT "/pods",
		      "/pods/x"));
	/* -t takes the next argument: it is not an operand. */
	CHECK(REFUSES("install", "install\0-t\0pods/x\0f", MNT, "/pods/x"));
}

static void test_tools(void)
{
	static const char *const tools[] = {
	    "cp",     "mv",	 "rsync",   "tar",	   "bsdtar",
	    "cpio",   "unzip",	 "scp",	    "sftp-server", "nautilus",
	    "Thunar", "dolphin", "pcmanfm", "git"};
	for (size_t i = 0; i < sizeof tools / sizeof *tools; i++) {
		/* Even when the path is one of their operands. */
		CHECK(
		    REFUSES(tools[i], "tool\0-r\0src\0pods/x", MNT, "/pods/x"));
		CHECK(strstr(why_text, tools[i]) != NULL);
	}
	CHECK(
	    REFUSES("cp", "cp\0-r\0pods/bench1\0pods/copy", MNT, "/pods/copy"));
	/* A copy tool run under another name is known by argv[0]. */
	CHECK(
	    REFUSES("wrapper", "/usr/bin/rsync\0-r\0a\0pods/", MNT, "/pods/a"));
}

static void test_others(void)
{
	/* A program's own mkdir() rents (the after-the-fact rule guards). */
	CHECK(RENTS("python3", "python3\0-c\0import os; os.mkdir('pods/z')",
		    MNT, "/pods/z"));
	CHECK(RENTS("a.out", "./a.out", "/", "/pods/z"));
	/* A caller that /proc does not show: refused. */
	struct intent_caller none = {0};
	struct buf why;
	buf_init(&why);
	CHECK(intent_decide(&none, MNT, "/pods/x", &why) == INTENT_INCIDENTAL);
	CHECK(why.len > 0);
	buf_reset(&why);
	/* mkdir with the mount point unknown: refused, not guessed. */
	struct intent_caller c = {.comm = "mkdir",
				  .cmdline = "mkdir\0pods/x",
				  .cmdline_len = 13,
				  .cwd = MNT};
	CHECK(intent_decide(&c, NULL, "/pods/x", &why) == INTENT_INCIDENTAL);
	buf_free(&why);
}

static void test_symlink(void)
{
	/* A symlink outside the mount that leads into it is followed. */
	char dir[] = "/tmp/test_intent.XXXXXX";
	if (!mkdtemp(dir)) {
		CHECK(!"mkdtemp");
		return;
	}
	char link[128], op[160];
	snprintf(link, sizeof link, "%s/gpu", dir);
	CHECK(symlink(MNT, link) == 0);
	size_t n = (size_t)snprintf(op, sizeof op, "mkdir%c%s/pods/x", 0, link);
	CHECK(decide_len("mkdir", op, n, "/", "/pods/x") == INTENT_DELIBERATE);
	n = (size_t)snprintf(op, sizeof op, "mkdir%cgpu/pods/x", 0);
	CHECK(decide_len("mkdir", op, n, dir, "/pods/x") == INTENT_DELIBERATE);
	/* A loop is no path at all. */
	char loop[128];
	snprintf(loop, sizeof loop, "%s/loop", dir);
	CHECK(symlink(loop, loop) == 0);
	n = (size_t)snprintf(op, sizeof op, "mkdir%c%s/pods/x", 0, loop);
	CHECK(decide_len("mkdir", op, n, "/", "/pods/x") == INTENT_INCIDENTAL);
	unlink(loop);
	unlink(link);
	rmdir(dir);
}

static void test_read_self(void)
{
	struct intent_caller c;
	CHECK(intent_caller_read(getpid(), &c) == 0);
	CHECK(c.tgid == getpid());
	/* The process's own name, as /proc says it (under valgrind it is
	 * valgrind's tool, not this program's). */
	char comm[64] = "";
	FILE *f = fopen("/proc/self/comm", "r");
	if (f) {
		if (fgets(comm, sizeof comm, f))
			comm[strcspn(comm, "\n")] = '\0';
		fclose(f);
	}
	CHECK(comm[0] != '\0');
	CHECK_STR(c.comm, comm);
	CHECK(c.cmdline_len > 0 && strstr(c.cmdline, "test_intent"));
	CHECK(c.cwd && c.cwd[0] == '/');
	intent_caller_free(&c);
	CHECK(intent_caller_read(0, &c) != 0);
	intent_caller_free(&c);
}

static void test_after_the_fact(void)
{
	static struct intent_recent r = INTENT_RECENT_INIT;
	char *name = NULL;
	/* Nothing rented: nothing to return. */
	CHECK(!intent_made_inside(&r, getpid(), "/pods/z/f", &name));
	intent_note_rent(&r, getpid(), "z");
	/* Other pods, the pod itself, other trees: no. */
	CHECK(!intent_made_inside(&r, getpid(), "/pods/y/f", &name));
	CHECK(!intent_made_inside(&r, getpid(), "/pods/z", &name));
	CHECK(!intent_made_inside(&r, getpid(), "/availability/z/f", &name));
	/* Another process (init) making something inside: no. */
	CHECK(!intent_made_inside(&r, 1, "/pods/z/f", &name));
	/* A child of the renter: yes, once. */
	int fds[2];
	CHECK(pipe(fds) == 0);
	pid_t child = fork();
	if (child == 0) {
		char c;
		close(fds[1]);
		if (read(fds[0], &c, 1) < 0)
			_exit(1);
		_exit(0);
	}
	close(fds[0]);
	CHECK(intent_made_inside(&r, child, "/pods/z/sub/f", &name));
	CHECK_STR(name, "z");
	free(name);
	name = NULL;
	close(fds[1]);
	waitpid(child, NULL, 0);
	/* Forgotten once returned. */
	CHECK(!intent_made_inside(&r, getpid(), "/pods/z/f", &name));
	CHECK(name == NULL);
	/* The renter itself. */
	intent_note_rent(&r, getpid(), "w");
	CHECK(intent_made_inside(&r, getpid(), "/pods/w/f", &name));
	CHECK_STR(name, "w");
	free(name);
	/* More rents than slots: the oldest give way, nothing breaks. */
	for (int i = 0; i < 2 * INTENT_RECENT; i++) {
		char n[16];
		snprintf(n, sizeof n, "p%d", i);
		intent_note_rent(&r, getpid(), n);
	}
	CHECK(intent_made_inside(&r, getpid(), "/pods/p31/f", &name));
	free(name);
	CHECK(!intent_made_inside(&r, getpid(), "/pods/p0/f", &name));
	intent_recent_clear(&r);
}

int main(void)
{
	test_mkdir();
	test_mkdir_parents();
	test_install();
	test_tools();
	test_others();
	test_symlink();
	test_read_self();
	test_after_the_fact();
	return t_done();
}
