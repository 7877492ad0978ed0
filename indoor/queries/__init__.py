"""All SQL of the service: named, parameterised statements next to the function that runs each."""
