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
# Admin/DRF static files into STATIC_ROOT, served by whitenoise. The dummy URLs and key only keep
# settings from starting the embedded servers or writing a secret into the image; nothing connects.
RUN DATABASE_URL=postgresql://build@localhost/build REDIS_URL=redis://localhost:6379/0 SECRET_KEY=collectstatic-only \
    python manage.py collectstatic --noinput --verbosity 0
EXPOSE 8000
