FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
RUN apt-get update && apt-get install -y --no-install-recommends build-essential nodejs npm && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY requirements/ requirements/
RUN pip install -r requirements/torch.txt \
 && pip install -c requirements/constraints.txt -r requirements/web.txt -r requirements/ml.txt \
 && SAM2_BUILD_CUDA=0 pip install --no-build-isolation -c requirements/constraints.txt -r requirements/sam2.txt
COPY . .
RUN if [ -f frontend/package.json ]; then cd frontend && npm ci && npm run build; fi
EXPOSE 8000
