/* planfile.c — see planfile.h. */
#include "tree_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lifecycle.h"
#include "plan.h"
#include "planfile.h"

static int plan_open(struct tree_handle *h, const struct node *n)
{
	(void)n;
	struct tree *t = h->tree;
	const char *slash = strrchr(h->path, '/');
	struct buf *b = xcalloc(1, sizeof *b);
	buf_init(b);
	int rc = plan_text(t->o.cache, t->o.tmpl,
			   t->o.life ? t->o.life->team_id : NULL,
			   slash ? slash + 1 : h->path, b);
	if (rc) {
		buf_free(b);
		free(b);
		return rc;
	}
	h->priv = b;
	return 0;
}

static int plan_read(struct tree_handle *h, char *out, size_t size, off_t off)
{
	struct buf *b = h->priv;
	if (off < 0 || (size_t)off >= b->len)
		return 0;
	size_t n = b->len - (size_t)off < size ? b->len - (size_t)off : size;
	memcpy(out, b->data + off, n);
	return (int)n;
}

static void plan_release(struct tree_handle *h)
{
	struct buf *b = h->priv;
	if (b) {
		buf_free(b);
		free(b);
	}
}

static const struct file_hooks plan_hooks = {
    .open = plan_open,
    .read = plan_read,
    .release = plan_release,
};

static const struct file_def plan_file = {
    .name = "", .flags = F_STREAM, .hooks = &plan_hooks};

int plan_step(struct node *n, const char *name)
{
	if (name[0] == '.' || !safe_name(name))
		return -ENOENT;
	n->type = N_FILE;
	n->file = &plan_file;
	return 0;
}
