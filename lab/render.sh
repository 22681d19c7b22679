# shellcheck shell=bash
# lab_render TEMPLATE NAME=VALUE...: print TEMPLATE with every @NAME@
# replaced by VALUE. Shared by lab/lab.sh (namespaces) and
# vagrant/provision/*.sh (VMs), so both run the same BIRD and lbd configs.
# A placeholder left unreplaced is an error.
lab_render() {
	local tmpl=$1 text kv
	shift
	text=$(<"$tmpl")
	for kv in "$@"; do
		text=${text//@${kv%%=*}@/${kv#*=}}
	done
	if [[ $text =~ @[A-Z0-9_]+@ ]]; then
		echo "lab_render: $tmpl: ${BASH_REMATCH[0]} not replaced" >&2
		return 1
	fi
	printf '%s\n' "$text"
}
