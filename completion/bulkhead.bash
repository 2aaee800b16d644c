# SPDX-License-Identifier: MIT
# bash completion for bulkhead(1): the global options (before the command), the commands,
# their options, job states, log levels, files for CONFIG, --report-json and --socket. Needs
# nothing from the bash-completion package; installed as
# share/bash-completion/completions/bulkhead, where it loads on demand.

_bulkhead_files()
{
	compopt -o filenames 2>/dev/null
	COMPREPLY=($(compgen -f -- "$1"))
}

_bulkhead()
{
	local cur=${COMP_WORDS[COMP_CWORD]} prev= cmd= opts= i first=1
	local commands="run check-config experiment status jobs reload log-level top submit wait
		cancel restart inject help"

	((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
	# --opt=VALUE: bash splits at '=': cur is "=" (prev the option) or the word after it
	if [[ $cur == = ]]; then
		cur=
	elif [[ $prev == = ]] && ((COMP_CWORD > 1)); then
		prev=${COMP_WORDS[COMP_CWORD - 2]}
	fi
	# Global options before the command: --socket PATH (or --socket=PATH), --help, --version.
	while ((first < COMP_CWORD)); do
		case ${COMP_WORDS[first]} in
		--socket)
			((first += 1))
			[[ ${COMP_WORDS[first]} == = ]] && ((first += 1)) # --socket=PATH
			((first += 1))
			;;
		-*) ((first += 1)) ;;
		*) break ;;
		esac
	done
	if ((first >= COMP_CWORD)); then
		if [[ $prev == --socket ]]; then
			_bulkhead_files "$cur"
		else
			COMPREPLY=($(compgen -W "$commands --socket --help --version" -- "$cur"))
		fi
		return
	fi
	cmd=${COMP_WORDS[first]}

	case $prev in
	--socket | --report-json | --json | --svg)
		_bulkhead_files "$cur"
		return
		;;
	--modes)
		# a comma-separated list: complete the word after the last comma
		local done_modes=${cur%,*} m words=
		[[ $cur == *,* ]] && done_modes+=, || done_modes=
		for m in threads threads+restart processes hybrid fork-per-job; do
			words+=" $done_modes$m"
		done
		[[ -z $done_modes ]] && words+=" all"
		COMPREPLY=($(compgen -W "$words" -- "$cur"))
		compopt -o nospace 2>/dev/null
		return
		;;
	--jobs | --threads | --crash-rate | --runs)
		COMPREPLY=()
		return
		;;
	--state)
		COMPREPLY=($(compgen -W "queued running done failed crashed timed_out cancelled" \
			-- "$cur"))
		return
		;;
	--group | --limit | --interval | --count | --pool | --arg)
		COMPREPLY=()
		return
		;;
	--run | --job)
		COMPREPLY=($(compgen -W "builtin:noop builtin:spin builtin:sleep builtin:balance \
			builtin:tls builtin:fail builtin:segv builtin:abort builtin:fpe builtin:ill \
			builtin:bus builtin:stack-overflow builtin:exit builtin:hang builtin:deadlock \
			builtin:leak" -- "$cur"))
		return
		;;
	esac

	case $cmd in
	run) opts="--report-json --quiet --help" ;;
	check-config) opts="--help --" ;;
	experiment)
		opts="--jobs --threads --job --arg --crash-rate --modes --runs --json --svg --quiet
			--help"
		;;
	status) opts="--json --socket --help" ;;
	jobs) opts="--state --group --limit --json --socket --help" ;;
	submit) opts="--pool --run --count --input --arg --json --socket --help" ;;
	wait) opts="--group --json --socket --help" ;;
	reload | cancel | restart | inject) opts="--socket --help" ;;
	log-level) opts="--socket --help" ;;
	top) opts="--interval --count --socket --help" ;;
	*)
		COMPREPLY=()
		return
		;;
	esac

	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$opts" -- "$cur"))
		return
	fi
	case $cmd in
	run | check-config)
		_bulkhead_files "$cur"
		;;
	inject)
		# POOL[/INDEX] first, then the fault
		if ((COMP_CWORD >= first + 2)); then
			COMPREPLY=($(compgen -W "segv abort hang kill leak" -- "$cur"))
		fi
		;;
	log-level)
		# LEVEL, once: skip it if a word after the command already is one
		for ((i = first + 1; i < COMP_CWORD; i++)); do
			case ${COMP_WORDS[i]} in
			debug | info | notice | warning | err) return ;;
			esac
		done
		COMPREPLY=($(compgen -W "debug info notice warning err" -- "$cur"))
		;;
	*)
		COMPREPLY=($(compgen -W "$opts" -- "$cur"))
		;;
	esac
}

complete -F _bulkhead bulkhead
