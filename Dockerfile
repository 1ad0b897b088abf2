# One image for every Switchyard role: the command picks it (api, worker --workflows, worker --pool local, setup).
# Debian-based on purpose: Temporal's native core ships for glibc, not musl/Alpine.
FROM node:22-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY bin ./bin
COPY src ./src
COPY workflows ./workflows
COPY activities ./activities
COPY tsconfig.json ./
# Workflow workers then start from this bundle instead of running webpack at boot.
RUN node bin/switchyard bundle
USER node
ENTRYPOINT ["node", "bin/switchyard"]
CMD ["api"]
