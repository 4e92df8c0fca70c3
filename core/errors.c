/*
 * errors.c: names for herald's error codes (core/errors.h). Pure; any thread.
 */
#include <string.h>

#include "core/errors.h"

const char *
hr_strerror(int err)
{
	switch (err) {
	case HR_OK:
		return "ok";
	case HR_EFULL:
		return "channel full";
	case HR_EBADNAME:
		return "invalid channel or group name";
	case HR_EDEPTH:
		return "nesting too deep";
	case HR_EUTF8:
		return "invalid UTF-8";
	case HR_ETYPE:
		return "wrong type";
	case HR_EBADMSG:
		return "malformed message";
	case HR_ECLOSED:
		return "closed";
	default:
		break;
	}
	if (err < 0 && err > -1000)
		return strerror(-err);
	return "unknown error";
}
