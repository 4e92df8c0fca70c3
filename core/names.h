/*
 * names.h: Channels' channel and group name rules, and the fnmatch-style
 * glob used by channel_capacity (core.h). Pure code; any thread.
 */
#ifndef HERALD_CORE_NAMES_H
#define HERALD_CORE_NAMES_H

#include <stdbool.h>
#include <stddef.h>

/* Channels' MAX_NAME_LENGTH: names must be shorter than this. */
#define HR_NAME_MAX 100

/* Channel name: ^[a-zA-Z\d\-_.]+(![\d\w\-_.]*)?$, len < 100. 0 or HR_EBADNAME. */
int hr_name_check_channel(const char *name, size_t len);
/* Group name: ^[a-zA-Z\d\-_.]+$, len < 100. 0 or HR_EBADNAME. */
int hr_name_check_group(const char *name, size_t len);
/* Length of the non-local part of a specific name (up to and including '!'),
 * or 0 if the name has no '!'. */
size_t hr_name_nonlocal_len(const char *name, size_t len);

/* Glob match as Python's fnmatch.fnmatch on POSIX (case-sensitive): *, ?, [seq],
 * [!seq]. */
bool hr_glob_match(const char *pattern, const char *name, size_t len);

/* Comma lists, as options take them ("a, b ,c"): the next item at *cursor,
 * with the blanks (spaces, tabs) around it trimmed, in *item (borrowed from
 * the list, not NUL-terminated) and *len; *cursor moves past the item's
 * comma, or to NULL after the last item. false when *cursor is NULL (the
 * list is done). Every comma separates two items, so "" is one empty item
 * and "a," two, the second empty: callers refuse empty items themselves. */
bool hr_list_next(const char **cursor, const char **item, size_t *len);

#endif /* HERALD_CORE_NAMES_H */
