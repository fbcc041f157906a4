# aeserve production image: the official Triton Inference Server with its native ONNX Runtime
# backend, serving the shipped model repository (encoder/decoder pairs, instance_group KIND_GPU).
#
#   docker build -t aeserve-triton .
#   docker run --rm --gpus all -p 8000:8000 -p 8001:8001 -p 8002:8002 aeserve-triton
#   curl -fsS localhost:8000/v2/health/ready          # 200 once every model is loaded
#   AESERVE_URL=grpc://localhost:8001 aeserve generate -n 16 --out grid.png
#
# 24.10 = Triton 2.51 (CUDA 12.6), the same server version nvidia-pytriton 0.7.0 bundles for
# local development. Needs an NVIDIA driver >= 560 (or a data-center driver with forward
# compatibility) and the NVIDIA Container Toolkit on the host.
FROM nvcr.io/nvidia/tritonserver:24.10-py3

COPY model_repository/ /models/

# 8000 HTTP/REST (KServe v2), 8001 gRPC, 8002 Prometheus metrics
EXPOSE 8000 8001 8002

# The image's own entrypoint (nvidia_entrypoint.sh) is kept; only the command is set.
#  --strict-readiness=true      /v2/health/ready is 200 only when every model is ready
#  --exit-on-error=false        one model failing to load does not take the others down
#  --disable-auto-complete-config  the shipped config.pbtxt files are complete; use them as is
#  --model-control-mode=none    load everything at start; the repository is baked into the image
CMD ["tritonserver", \
     "--model-repository=/models", \
     "--strict-readiness=true", \
     "--exit-on-error=false", \
     "--disable-auto-complete-config", \
     "--model-control-mode=none", \
     "--log-verbose=0", \
     "--exit-timeout-secs=30"]
