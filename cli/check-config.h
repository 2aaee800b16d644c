/* SPDX-License-Identifier: MIT */
/* `bulkhead check-config FILE`: validate a config and print the effective one. */
#pragma once

/*
 * argv[0] is "check-config". Returns the process exit code: 0 if FILE is valid (its
 * effective config printed on stdout), 78 (EX_CONFIG) on config errors (printed on stderr,
 * one per line, each naming FILE:LINE), 2 on a usage error, 1 if stdout cannot be written.
 */
int cmd_check_config(int argc, char **argv);
