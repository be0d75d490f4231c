"""A throwaway model for the drop-in test."""
