"""Chat over documents: extraction, chunking, search terms, embeddings.

Nothing here imports services, streaming or api; the modules are pure or talk only to their own libraries.
"""
