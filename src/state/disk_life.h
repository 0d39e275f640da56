/* disk_life.h — mkdir and rmdir of disks/<name>, and the disks a pod's
 * mkdir attaches (DESIGN.md "The account"). A disk is made from the
 * template's top-level disk.size and disk.offer (disk_offers/<offer>),
 * else the cheapest offer in stock in disk.data_center / disk.country,
 * else the cheapest in stock; its price (the offer's USD per GB-hour times
 * the size) must fit max_hourly (budget.h). It shows in disks/ as soon as
 * the API has answered. rmdir deletes it, EBUSY (nothing sent) while a
 * live pod uses it. Two mkdirs of one name at once make one disk (the
 * second: EEXIST). */
#ifndef PRIMEFS_DISK_LIFE_H
#define PRIMEFS_DISK_LIFE_H

#include "lifecycle.h"

/* 0 or -errno, each with a line in `log`. */
int disk_create(struct lifecycle *l, const char *name);
int disk_delete(struct lifecycle *l, const char *name);

/* For pod `name`'s mkdir: when the template gives it `disks = a, b`, the
 * offers where those disks can attach (the API's `disks` filter on
 * /availability/gpus) replace *offers, and *ids gets the disks' ids for
 * the create body's `disks`; else nothing changes (0). -errno (logged
 * under path) when a disk is unknown or the listing fails. */
int disks_for_pod(struct lifecycle *l, const char *name, const char *path,
		  struct snap **offers, json_object **ids);

#endif
