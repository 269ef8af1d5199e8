FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY config config
COPY arena arena
COPY judges judges
COPY llm llm
RUN pip install --no-cache-dir .
COPY . .
EXPOSE 8000
CMD ["python", "manage.py", "arena_serve", "--host", "0.0.0.0", "--port", "8000"]
