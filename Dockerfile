# The Concord image: the gateway and the department services (`concord ...`). For docker-compose.yml.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY contracts ./contracts
COPY base ./base
COPY gateway ./gateway
COPY services ./services
COPY deploy ./deploy
RUN pip install --no-cache-dir .
ENTRYPOINT ["concord"]
