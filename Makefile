# Opt-in targets (not run by .ci/run).
.PHONY: interop-check

# PyTorch + onnxruntime reproduce memcap exports (see scripts/interop-check.sh).
interop-check:
	bash scripts/interop-check.sh
