/* planfile.h — plan/<name>: any safe name resolves to a file whose text,
 * made when it is opened, is the dry run of `mkdir pods/<name>` (plan.h);
 * none is listed. A stream (size 0): it is worked out at open. */
#ifndef PRIMEFS_PLANFILE_H
#define PRIMEFS_PLANFILE_H

#include "tree.h"

int plan_step(struct node *n, const char *name);

#endif
